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
    """``images`` (N, C, H, W) uint8 and ``labels`` (N,) int64; ``skipped``: the files of the source that
    could not be read as images (path and reason), left out.

    ``__getitems__`` serves a whole batch with one indexing operation, so a DataLoader over this data set
    does no per-image work; pair it with ``collate_fn=keep_batch``.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, skipped: list[str] | None = None):
        if images.dtype != torch.uint8 or images.ndim != 4 or len(images) != len(labels):
            raise ValueError("expected (N, C, H, W) uint8 images and N labels")
        self.images, self.labels, self.skipped = images, labels, list(skipped or [])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices)
        return self.images[index], self.labels[index]


class AlternatingFlip(Dataset):
    """``dataset`` (served by ``__getitems__``) with each image mirrored in every other epoch: a coin per
    image, drawn once from ``seed``, says whether it starts mirrored, and each odd epoch (``epoch()``)
    mirrors them all (airbench94's alternating flip). Every image is seen both ways in any two epochs in
    a row, where a coin per epoch would show some images the same way several epochs running."""

    def __init__(self, dataset: Dataset, epoch, seed: int):
        self.dataset, self.epoch = dataset, epoch
        self.start_mirrored = torch.rand(len(dataset), generator=torch.Generator().manual_seed(seed)) < 0.5

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.dataset.__getitems__(indices)
        mirror = self.start_mirrored[torch.as_tensor(indices)] ^ bool(self.epoch() % 2)
        return torch.where(mirror[:, None, None, None], images.flip(3), images), labels

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.__getitems__([index])
        return images[0], labels[0]


def keep_batch(batch):
    """Collate function for ``InMemoryImages``: the batch is already stacked."""
    return batch


def fingerprint(files: list[tuple[str, os.stat_result]]) -> str:
    """Changes when any of ``files`` (name, stat) is added, removed, renamed, moved, resized or written:
    besides size and modification time it takes the inode and the inode change time, which tools that
    keep modification times (``cp -p``, ``rsync -t``, ``tar``) cannot preserve."""
    digest = hashlib.sha1()
    for name, stat in files:
        digest.update(
            f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}\0{stat.st_ino}\n".encode()
        )
    return digest.hexdigest()


def decode_all(dataset: Dataset, num_workers: int) -> InMemoryImages:
    """Run a per-image data set once and stack everything. Its items are ``(uint8 CHW tensor, label)``,
    or ``(None, why)`` for a file that could not be read: left out, and kept in ``skipped``."""
    # An own generator: seeding the workers must not draw from the global RNG, or a run that builds
    # the cache would train differently from one that reads it.
    loader = DataLoader(
        dataset, batch_size=512, num_workers=num_workers, generator=torch.Generator(), collate_fn=_readable
    )
    images, labels, skipped = [], [], []
    for batch_images, batch_labels, batch_skipped in loader:
        images.append(batch_images)
        labels.append(batch_labels)
        skipped += batch_skipped
    if not images or not sum(len(b) for b in images):
        return InMemoryImages(
            torch.empty(0, 1, 1, 1, dtype=torch.uint8), torch.empty(0, dtype=torch.long), skipped
        )
    kept = [b for b in images if len(b)]
    return InMemoryImages(torch.cat(kept), torch.cat(labels).long(), skipped)


def _readable(items: list) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    good = [(image, label) for image, label in items if image is not None]
    skipped = [why for image, why in items if image is None]
    if not good:
        return torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.long), skipped
    images, labels = zip(*good, strict=True)
    return torch.stack(images), torch.as_tensor(labels), skipped


def cached(path: Path, key: str, build) -> InMemoryImages:
    """Memory-map the cache at ``path`` if it was built for ``key``; else ``build()`` and save it. A cache
    file that is not one (another file put in its place, a pickle, a truncated file) is rebuilt: it is
    read with ``weights_only=True`` and checked, so nothing in it runs."""
    if path.is_file():
        found = read_cache(path, key)
        if found is not None:
            return found
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(
            f"cannot make the image cache folder {path.parent} ({err.strerror or err}); pass a writable "
            "--data.cache_dir"
        ) from err
    data = build()
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save({"key": key, "images": data.images, "labels": data.labels, "skipped": data.skipped}, partial)
    os.replace(partial, path)  # never leaves a half-written cache behind
    return data


def read_cache(path: Path, key: str) -> InMemoryImages | None:
    """The cache at ``path`` if it holds images built for ``key``; None for any other file."""
    try:
        saved = torch.load(path, mmap=True, weights_only=True)
    except Exception:  # noqa: BLE001  unreadable, truncated, a pickle: rebuilt
        return None
    if not isinstance(saved, dict) or saved.get("key") != key:
        return None
    images, labels, skipped = saved.get("images"), saved.get("labels"), saved.get("skipped", [])
    if not (
        isinstance(images, torch.Tensor) and isinstance(labels, torch.Tensor) and isinstance(skipped, list)
    ):
        return None
    try:
        return InMemoryImages(images, labels.long(), [str(s) for s in skipped])
    except ValueError:
        return None


def default_cache_dir(data_dir: Path) -> Path:
    """``data_dir/.cnnlab_cache`` when writable, else a per-data-set folder under ``~/.cache/cnnlab``.

    A folder without write permission bits counts as read-only even for root, who could write anyway.
    """
    if os.access(data_dir, os.W_OK) and data_dir.stat().st_mode & 0o222:
        return data_dir / ".cnnlab_cache"
    tag = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:12]
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "cnnlab" / f"{data_dir.resolve().name}-{tag}"
