"""``AtomicCheckpointIO``: the Lightning plugin through which every run writes and reads checkpoints.

* Writing: each checkpoint goes to a temporary file in the same folder, is flushed to disk and renamed
  over the target, so a crash or a failure while writing leaves the previous ``last.ckpt`` whole and no
  partial file behind.
* Reading (resume, the post-fit test, ``--ckpt_path``): through ``cnnlab.models.checkpoint``, the one
  checkpoint reader: ``weights_only`` loading, one-line errors, and the file the CLI already read is not
  read again.
"""

import os
import re
import uuid
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from cnnlab.models.checkpoint import take_checkpoint

TEMPORARY = ".tmp"  # .<checkpoint name>.<pid>.<random>.tmp beside the checkpoint, while it is written
_TEMPORARY = re.compile(r"\.(.+\.ckpt)\.(\d+)\.[0-9a-f]{8}\.tmp")


def remove_leftovers(folder) -> list[Path]:
    """Delete the temporary files that writes interrupted by a crash or SIGKILL left in ``folder`` (those
    of processes no longer running); returns them."""
    removed = []
    for path in Path(folder).glob(f".*{TEMPORARY}") if Path(folder).is_dir() else []:
        match = _TEMPORARY.fullmatch(path.name)
        if match and not _running(int(match.group(2))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` with an atomic, durable write for local files (temporary file in
    the target's folder, ``fsync``, ``os.replace``) and cnnlab's checkpoint reader for local files. Remote
    paths (``s3://`` ...) go to Lightning's own reader and writer."""

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None):
        if "://" in str(path):
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)
        return take_checkpoint(path)  # on the CPU; Lightning moves the states where they belong

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{TEMPORARY}")
        # os.open with mode 0o666, not mkstemp (0o600): the checkpoint gets the usual umask permissions
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)  # the rename itself survives a power cut only once the folder is synced


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
