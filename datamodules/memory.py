"""The fast path's storage: a whole split as one uint8 tensor, served a batch of indices at a time.

Image folders are decoded once and cached as a file that later runs memory-map; the cache is keyed by
a fingerprint of the source files (names, sizes, modification times) and rebuilt when they change.
"""

import hashlib
import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from .errors import DataError


class InMemoryImages(Dataset):
    """``images`` (N, C, H, W) uint8 and ``labels`` (N,) int64.

    ``__getitems__`` serves a whole batch with one indexing operation, so a DataLoader over this data set
    does no per-image work; pair it with ``collate_fn=keep_batch``.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        if images.dtype != torch.uint8 or images.ndim != 4 or len(images) != len(labels):
            raise ValueError("expected (N, C, H, W) uint8 images and N labels")
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices)
        return self.images[index], self.labels[index]


def keep_batch(batch):
    """Collate function for ``InMemoryImages``: the batch is already stacked."""
    return batch


def fingerprint(folder: Path) -> str:
    """Changes when any file under ``folder`` is added, removed, renamed, resized or rewritten."""
    digest = hashlib.sha1()
    top = len(str(folder)) + 1
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            stat = os.stat(path)
            digest.update(f"{path[top:]}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def decode_all(dataset: Dataset, num_workers: int) -> InMemoryImages:
    """Run a per-image data set (yielding uint8 CHW tensors) once and stack everything."""
    # An own generator: seeding the workers must not draw from the global RNG, or a run that builds
    # the cache would train differently from one that reads it.
    loader = DataLoader(dataset, batch_size=512, num_workers=num_workers, generator=torch.Generator())
    images, labels = zip(*loader, strict=True)
    return InMemoryImages(torch.cat(images), torch.cat(labels).long())


def cached(path: Path, key: str, build) -> InMemoryImages:
    """Memory-map the cache at ``path`` if it was built for ``key``; else ``build()`` and save it."""
    if path.is_file():
        try:
            saved = torch.load(path, mmap=True, weights_only=True)
            if saved.get("key") == key:
                return InMemoryImages(saved["images"], saved["labels"])
        except (RuntimeError, OSError, EOFError, KeyError):
            pass  # unreadable: rebuild below
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(
            f"cannot make the image cache folder {path.parent} ({err.strerror or err}); pass a writable "
            "--data.cache_dir"
        ) from err
    data = build()
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save({"key": key, "images": data.images, "labels": data.labels}, partial)
    os.replace(partial, path)  # never leaves a half-written cache behind
    return data


def default_cache_dir(data_dir: Path) -> Path:
    """``data_dir/.cnnlab_cache`` when writable, else a per-data-set folder under ``~/.cache/cnnlab``.

    A folder without write permission bits counts as read-only even for root, who could write anyway.
    """
    if os.access(data_dir, os.W_OK) and data_dir.stat().st_mode & 0o222:
        return data_dir / ".cnnlab_cache"
    tag = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:12]
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "cnnlab" / f"{data_dir.resolve().name}-{tag}"
