"""Checkpoint files: safe loading and atomic writing.

* ``load_checkpoint`` reads a checkpoint with ``torch.load(weights_only=True)`` only: tensors and plain
  values. A file that carries pickled Python objects is refused before any of it runs, and a truncated
  or foreign file is one clear ``UserError`` line instead of a traceback.
* ``AtomicCheckpointIO`` writes each checkpoint to a temporary file in the same folder, flushes it to
  disk and renames it over the target, so a crash or a failure while writing leaves the previous
  ``last.ckpt`` whole and no partial file behind.
"""

import os
import pickle
import uuid
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from cnnlab.errors import UserError


def _unsafe_reason(err: Exception) -> str:
    for line in str(err).splitlines():
        if "Unsupported global" in line or "Unsupported operand" in line:
            return line.strip().removeprefix("WeightsUnpickler error: ").split(". ")[0]
    return "objects other than tensors and plain values"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path``, loaded with ``weights_only=True``; a ``UserError`` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; pass an existing .ckpt file or 'last'")
    try:
        ckpt = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as err:
        if "Weights only load failed" in str(err):
            raise UserError(
                f"refusing to load {path}: it carries pickled Python code ({_unsafe_reason(err)}); cnnlab "
                "only loads checkpoints of tensors and plain values (torch.load weights_only=True), so "
                "nothing in it ran"
            ) from err
        raise UserError(
            f"{path} is not a PyTorch checkpoint ({err}); pass a .ckpt file cnnlab wrote"
        ) from err
    except Exception as err:  # torch.load fails on broken files in many ways (RuntimeError, OSError, ...)
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0]
        raise UserError(
            f"{path} is truncated or not a PyTorch checkpoint ({reason}); pass a complete .ckpt file "
            "cnnlab wrote"
        ) from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise UserError(
            f"{path} is not a Lightning checkpoint (it has no state_dict); pass a .ckpt file cnnlab wrote"
        )
    return ckpt


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` with an atomic, durable write for local files: temporary file in
    the target's folder, ``fsync``, ``os.replace``. Remote paths (``s3://`` ...) go to Lightning's writer."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
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
