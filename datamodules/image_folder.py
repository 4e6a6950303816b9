"""Your own images: ``data_dir/{train,test}/<class name>/<image>``, optional ``data_dir/val/``.

The files of a split are listed once (``list_images``): symlinked files and folders are followed, each
real file counts once, and a folder linked into itself is not entered again. Files that cannot be read
as images are named on stderr (the first few, then a count) and left out; the run goes on.
"""

import os
import sys
import warnings
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms import v2

from .base import ClassificationDataModule
from .errors import DataError, DataNotFoundError
from .memory import InMemoryImages, cached, decode_all, default_cache_dir, fingerprint
from .predict import readable_image

# Images read to estimate the normalisation statistics when the config gives none.
STATS_SAMPLE = 1000
# The fast path decodes a folder into memory only if it takes at most this share of the machine's RAM.
MEMORY_SHARE = 0.5
SHOWN = 5  # unreadable files named one by one; the rest are counted


def list_images(folder: Path, classes: list[str]) -> list[tuple[Path, int, os.stat_result]]:
    """``(path, class index, stat)`` of every image file under ``folder/<class>/``, in the order
    torchvision's ``ImageFolder`` gives (class, then folder, then file name). Symlinks are followed; a
    file reached twice counts once, and a folder reached twice (a link loop) is not entered again."""
    samples, seen_files = [], set()
    for label, name in enumerate(classes):
        found, seen_dirs, stack = [], set(), [str(folder / name)]
        while stack:
            directory = stack.pop()
            try:
                info = os.stat(directory)
                entries = list(os.scandir(directory))
            except OSError:
                continue
            if (info.st_dev, info.st_ino) in seen_dirs:
                continue  # a loop, or a folder linked twice
            seen_dirs.add((info.st_dev, info.st_ino))
            for entry in entries:
                try:
                    if entry.is_dir():  # follows links
                        stack.append(entry.path)
                    elif entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMG_EXTENSIONS:
                        found.append((directory, entry.name, entry.stat()))
                except OSError:  # a broken link
                    continue
        for directory, file_name, stat in sorted(found, key=lambda f: (f[0], f[1])):
            if (stat.st_dev, stat.st_ino) not in seen_files:
                seen_files.add((stat.st_dev, stat.st_ino))
                samples.append((Path(directory, file_name), label, stat))
    return samples


class ImageFiles(Dataset):
    """``(transform(image), label)`` per listed file, or ``(None, "path: why")`` for one that is not a
    readable image."""

    def __init__(self, samples: list[tuple[Path, int, os.stat_result]], transform, mode: str):
        self.samples, self.transform, self.mode = samples, transform, mode

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label, _ = self.samples[index]
        image, why = readable_image(path, self.mode)
        if image is None:
            return None, f"{path}: {why}"
        return self.transform(image), label


def report_skipped(split_folder: Path, skipped: list[str], total: int) -> None:
    """Name the first unreadable files of a split on stderr, then count the rest."""
    if not skipped:
        return
    for line in skipped[:SHOWN]:
        print(f"cnnlab: skipping {line} (not a readable image)", file=sys.stderr)
    more = f" ({len(skipped) - SHOWN} more not shown)" if len(skipped) > SHOWN else ""
    print(f"cnnlab: {len(skipped)} of {total} files in {split_folder} skipped{more}", file=sys.stderr)


class ImageFolderDataModule(ClassificationDataModule):
    """Image folders in ``torchvision.datasets.ImageFolder``'s layout; class names come from the folders.

    Args:
        data_dir: folder holding ``train/<class>/...`` and ``test/<class>/...`` (and optionally ``val/``;
            without it, ``val_fraction`` of ``train/`` is held out).
        image_size: side every image is resized to; default: the size of the first training image.
        channels: 3 for RGB, 1 for grayscale; images are converted on load.
        mean, std: normalisation per channel; default: estimated from up to 1,000 training images.
        crop_padding: when above 0, training images also get a random crop of the image padded by this
            many pixels (4 for CIFAR-10's usual augmentation).
        cache_dir: where the fast path keeps the decoded images (default ``data_dir/.cnnlab_cache``, or
            ``~/.cache/cnnlab/...`` when ``data_dir`` is read-only). Rebuilt when the images change.
        Other arguments as in ``ClassificationDataModule``. Training augmentation: horizontal flip.
    """

    def __init__(
        self,
        data_dir: str = "data",
        image_size: int | None = None,
        channels: int = 3,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        batch_size: int = 128,
        num_workers: int = 2,
        val_fraction: float = 0.1,
        split_seed: int = 42,
        augment: bool = True,
        crop_padding: int = 0,
        fast: bool = True,
        pad_mode: str = "zeros",
        translate: int = 0,
        cutout: int = 0,
        auto_augment: str = "none",
        randaugment_n: int = 2,
        randaugment_m: int = 9,
        random_erasing: float = 0.0,
        alternate_flip: bool = False,
        cache_dir: str | None = None,
        predict_dir: str | list[str] | None = None,
    ):
        super().__init__(
            data_dir,
            batch_size,
            num_workers,
            val_fraction,
            split_seed,
            augment,
            download=False,
            fast=fast,
            pad_mode=pad_mode,
            translate=translate,
            cutout=cutout,
            crop_padding=crop_padding,
            auto_augment=auto_augment,
            randaugment_n=randaugment_n,
            randaugment_m=randaugment_m,
            random_erasing=random_erasing,
            alternate_flip=alternate_flip,
            predict_dir=predict_dir,
        )
        self._listed: dict[str, list[tuple[Path, int, os.stat_result]]] = {}
        if image_size is not None and image_size < 1:
            raise DataError(f"--data.image_size must be 1 or more pixels, got {image_size}")
        if channels not in (1, 3):
            raise DataError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
        self.in_channels = channels
        self.class_names = self._classes("train")
        for split in ("val", "test"):
            if self._has_split(split):
                self._check_same_classes(split)
        self.num_classes = len(self.class_names)
        self.image_size = image_size or self._first_image_size()
        self.cache_dir = cache_dir
        self.mean = tuple(mean) if mean else None
        self.std = tuple(std) if std else None

    def _classes(self, split: str) -> list[str]:
        folder = self.data_dir / split
        classes = sorted(d.name for d in folder.iterdir() if d.is_dir()) if folder.is_dir() else []
        if not classes:
            raise DataNotFoundError(
                f"no class folders in {folder.resolve()}; an image folder data set needs "
                f"{self.data_dir}/train/<class>/<image> and {self.data_dir}/test/<class>/<image>"
            )
        return classes

    def _check_same_classes(self, split: str) -> None:
        classes = self._classes(split)
        if classes != self.class_names:
            only_train = sorted(set(self.class_names) - set(classes))
            only_other = sorted(set(classes) - set(self.class_names))
            raise DataError(
                f"the class folders of {split}/ differ from train/ (only in train/: {only_train}, only in "
                f"{split}/: {only_other}); every split needs the same class folders"
            )

    def _first_image_size(self) -> int:
        for path, _, _ in self._samples("train"):
            image, _ = readable_image(path, "RGB")
            if image is not None:
                return max(image.size)
        raise DataNotFoundError(f"no readable images in {(self.data_dir / 'train').resolve()}/<class>/")

    def _samples(self, split: str) -> list[tuple[Path, int, os.stat_result]]:
        if split not in self._listed:
            self._listed[split] = list_images(self.data_dir / split, self.class_names)
        return self._listed[split]

    def _has_split(self, split: str) -> bool:
        return split in ("train", "test") or (self.data_dir / split).is_dir()

    def prepare_data(self) -> None:
        pass  # nothing to download

    def _decode(self) -> list:
        size = (self.image_size, self.image_size)
        return [v2.Resize(size, antialias=True)] + ([v2.Grayscale(1)] if self.in_channels == 1 else [])

    def _augmentation_defaults(self) -> dict:
        return {"flip": True}

    def _open(self, split: str, transform) -> Dataset:
        """The per-image path: unreadable files come through as ``None`` and are left out of batches."""
        # read as RGB and made grayscale by the transforms, as torchvision's ImageFolder reads them
        return _SkippingDataset(ImageFiles(self._samples(split), transform, "RGB"))

    def cache_key(self, split: str) -> tuple[Path, str]:
        """Where the split's image cache lives and the key it must hold: a fingerprint of the listed files
        (the check run before every cached run), the image shape and the classes."""
        folder = self.data_dir / split
        listed = [(str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path), stat)
                  for path, _, stat in self._samples(split)]  # fmt: skip
        key = f"{fingerprint(listed)}-{self.in_channels}x{self.image_size}-{','.join(self.class_names)}"
        cache_dir = self.cache_dir or default_cache_dir(self.data_dir)
        return Path(cache_dir) / f"{split}-{self.in_channels}x{self.image_size}.pt", key

    def _open_memory(self, split: str) -> InMemoryImages:
        samples = self._samples(split)
        folder = self.data_dir / split
        path, key = self.cache_key(split)
        decoded = v2.Compose([*self._decode(), v2.ToImage()])
        data = cached(path, key, lambda: decode_all(ImageFiles(samples, decoded, "RGB"), self.num_workers))
        self.skipped[split] = data.skipped
        report_skipped(folder, data.skipped, len(samples))
        if not len(data):
            raise DataNotFoundError(
                f"no readable images in {folder.resolve()} ({len(samples)} image files, none readable); put "
                "images in its class folders"
            )
        return data

    def _fits_in_memory(self) -> bool:
        count = sum(len(self._samples(split)) for split in ("train", "val", "test") if self._has_split(split))
        needed = count * self.in_channels * self.image_size**2
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return needed <= MEMORY_SHARE * available

    def setup(self, stage: str | None = None) -> None:
        if self.fast and not self._in_memory and not self._fits_in_memory():
            warnings.warn(
                f"{self.data_dir} is too large to hold in memory; using the per-image path", stacklevel=2
            )
            self.fast = False
        if self.mean is None or self.std is None:
            self.mean, self.std = self._estimate_stats()
        super().setup(stage)

    def _estimate_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of up to ``STATS_SAMPLE`` training images (a seeded sample)."""
        order = torch.Generator().manual_seed(self.split_seed)
        if self.fast:
            images = self._dataset("train", False).images
            sample = images[torch.randperm(len(images), generator=order)[:STATS_SAMPLE]]
        else:
            decoded = v2.Compose([*self._decode(), v2.ToImage()])
            images = ImageFiles(self._samples("train"), decoded, "RGB")
            picks = torch.randperm(len(images), generator=order)[:STATS_SAMPLE].tolist()
            sample = torch.stack([image for image, _ in (images[i] for i in picks) if image is not None])
        sample = sample.float() / 255
        mean, std = sample.mean(dim=(0, 2, 3)), sample.std(dim=(0, 2, 3)).clamp_min(1e-6)
        return tuple(round(v, 4) for v in mean.tolist()), tuple(round(v, 4) for v in std.tolist())

    def state_dict(self) -> dict:
        # Saved in checkpoints, so a resumed or evaluated run normalises exactly as training did.
        return {"mean": list(self.mean or ()), "std": list(self.std or ())}

    def load_state_dict(self, state: dict) -> None:
        if state.get("mean"):
            self.mean, self.std = tuple(state["mean"]), tuple(state["std"])


class _SkippingDataset(Dataset):
    """The per-image path's data set: an unreadable file is named once and replaced by the next
    readable one, so batches keep their size and the run goes on."""

    def __init__(self, files: ImageFiles):
        self.files, self._named = files, set()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        for offset in range(len(self.files)):
            image, label = self.files[(index + offset) % len(self.files)]
            if image is not None:
                return image, label
            if label not in self._named:
                self._named.add(label)
                print(f"cnnlab: skipping {label} (not a readable image)", file=sys.stderr)
        raise DataNotFoundError(f"no readable images among {len(self.files)} files")
