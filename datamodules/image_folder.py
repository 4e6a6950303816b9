"""Your own images: ``data_dir/{train,test}/<class name>/<image>``, optional ``data_dir/val/``."""

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms import v2

from cnnlab.errors import DataNotFoundError, UserError
from datamodules.base import ClassificationDataModule

# Images read to estimate the normalisation statistics when the config gives none.
STATS_SAMPLE = 1000


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
    ):
        super().__init__(data_dir, batch_size, num_workers, val_fraction, split_seed, augment, download=False)
        if channels not in (1, 3):
            raise UserError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
        self.in_channels = channels
        self.class_names = self._classes("train")
        for split in ("val", "test"):
            if split == "test" or (self.data_dir / split).is_dir():
                self._check_same_classes(split)
        self.num_classes = len(self.class_names)
        self.image_size = image_size or self._first_image_size()
        self.crop_padding = crop_padding
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
            raise UserError(
                f"the class folders of {split}/ differ from train/ (only in train/: {only_train}, only in "
                f"{split}/: {only_other}); every split needs the same class folders"
            )

    def _first_image_size(self) -> int:
        for class_dir in sorted((self.data_dir / "train").iterdir()):
            for path in sorted(class_dir.iterdir()) if class_dir.is_dir() else []:
                if path.suffix.lower() in IMG_EXTENSIONS:
                    with Image.open(path) as img:
                        return max(img.size)
        raise DataNotFoundError(f"no images in {(self.data_dir / 'train').resolve()}/<class>/")

    def prepare_data(self) -> None:
        pass  # nothing to download

    def _decode(self) -> list:
        size = (self.image_size, self.image_size)
        return [v2.Resize(size, antialias=True)] + ([v2.Grayscale(1)] if self.in_channels == 1 else [])

    def _augmentation(self) -> list:
        crop = [v2.RandomCrop(self.image_size, padding=self.crop_padding)] if self.crop_padding else []
        return crop + [v2.RandomHorizontalFlip()]

    def _open(self, split: str, transform) -> Dataset:
        try:
            return ImageFolder(str(self.data_dir / split), transform=transform)
        except FileNotFoundError as err:  # a class folder without images
            raise DataNotFoundError(f"{err}; put at least one image in every class folder") from err

    def _open_val(self, transform) -> Dataset | None:
        return self._open("val", transform) if (self.data_dir / "val").is_dir() else None

    def setup(self, stage: str | None = None) -> None:
        if self.mean is None or self.std is None:
            self.mean, self.std = self._estimate_stats()
        super().setup(stage)

    def _estimate_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of up to ``STATS_SAMPLE`` training images (a seeded sample)."""
        plain = v2.Compose(self._decode() + [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
        images = ImageFolder(str(self.data_dir / "train"), transform=plain)
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.split_seed))
        batch = torch.stack([images[i][0] for i in order[:STATS_SAMPLE].tolist()])
        mean = batch.mean(dim=(0, 2, 3))
        std = batch.std(dim=(0, 2, 3)).clamp_min(1e-6)
        return tuple(round(v, 4) for v in mean.tolist()), tuple(round(v, 4) for v in std.tolist())

    def state_dict(self) -> dict:
        # Saved in checkpoints, so a resumed or evaluated run normalises exactly as training did.
        return {"mean": list(self.mean or ()), "std": list(self.std or ())}

    def load_state_dict(self, state: dict) -> None:
        if state.get("mean"):
            self.mean, self.std = tuple(state["mean"]), tuple(state["std"])
