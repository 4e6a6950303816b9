"""The shared part of every data module: validation split, normalisation, loaders.

A subclass says how to open a split (``_open``) and which augmentation its training set gets
(``_augmentation``); it sets ``num_classes``, ``in_channels``, ``image_size`` and ``class_names`` in
its constructor, so the CLI can pass them to the model before anything is loaded.
"""

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2

from cnnlab.errors import DataNotFoundError


class ClassificationDataModule(L.LightningDataModule):
    """Image classification data with a seeded validation split carved from the training set.

    Args:
        data_dir: folder that holds the data set (downloaded there when ``download`` is true).
        batch_size: images per batch, for every split.
        num_workers: DataLoader worker processes.
        val_fraction: share of the training set held out for validation (the test split is never used
            for model selection).
        split_seed: seed of the validation split, fixed so every run of a recipe validates on the same images.
        augment: apply the data set's usual training augmentation.
        download: fetch the data set when it is missing.
    """

    num_classes: int
    in_channels: int
    image_size: int
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        num_workers: int = 2,
        val_fraction: float = 0.1,
        split_seed: int = 42,
        augment: bool = True,
        download: bool = True,
    ):
        super().__init__()
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
        self.data_dir = Path(data_dir).expanduser()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.augment = augment
        self.download = download
        self.train_set = self.val_set = self.test_set = None

    # -- what a subclass provides -------------------------------------------------------------------
    # A torchvision data set class taking (root, train, transform, download), its display name and the
    # folder it keeps under data_dir; subclasses over other sources override _open and prepare_data.
    dataset_cls: type | None = None
    dataset_name: str = ""
    dataset_folder: str = ""

    def prepare_data(self) -> None:
        for train in (True, False):
            self._open_torchvision(train, transform=None, download=self.download)

    def _open(self, split: str, transform) -> Dataset:
        """The ``"train"`` or ``"test"`` split with ``transform`` applied per image."""
        return self._open_torchvision(split == "train", transform=transform, download=False)

    def _decode(self) -> list:
        """Transforms every split starts with (resizing, colour conversion)."""
        return []

    def _augmentation(self) -> list:
        """Transforms applied to training images before tensor conversion."""
        return []

    def _open_val(self, transform) -> Dataset | None:
        """A separate validation split, if the data set has one."""
        return None

    # -- shared machinery ---------------------------------------------------------------------------
    def _to_tensor(self) -> list:
        return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(self.mean, self.std)]

    def eval_transform(self) -> v2.Compose:
        return v2.Compose(self._decode() + self._to_tensor())

    def train_transform(self) -> v2.Compose:
        return v2.Compose(self._decode() + (self._augmentation() if self.augment else []) + self._to_tensor())

    def _open_torchvision(self, train: bool, transform, download: bool) -> Dataset:
        """Open ``dataset_cls``, turning "not found" and failed downloads into one clear line."""
        looked_in = (self.data_dir / self.dataset_folder).resolve()
        try:
            return self.dataset_cls(str(self.data_dir), train=train, transform=transform, download=download)
        except (RuntimeError, OSError) as err:
            if download:
                reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
                raise DataNotFoundError(
                    f"could not download {self.dataset_name} to {looked_in} ({reason}); copy the files there "
                    "by hand or point --data.data_dir at an existing copy"
                ) from err
            if "not found" not in str(err).lower():
                raise
            raise DataNotFoundError(
                f"{self.dataset_name} not found in {looked_in}; set --data.download true to download it, "
                f"or point --data.data_dir at the folder that holds {self.dataset_folder.split('/')[0]}/"
            ) from err

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", "validate", None) and self.train_set is None:
            val = self._open_val(self.eval_transform())
            if val is not None:
                self.train_set, self.val_set = self._open("train", self.train_transform()), val
            else:
                self.train_set, self.val_set = self._split(
                    self._open("train", self.train_transform()), self._open("train", self.eval_transform())
                )
        if stage in ("test", "predict", None) and self.test_set is None:
            self.test_set = self._open("test", self.eval_transform())

    def _split(self, augmented: Dataset, plain: Dataset) -> tuple[Subset, Subset]:
        """Hold out ``val_fraction`` of the training images; validation images are not augmented."""
        order = torch.randperm(len(plain), generator=torch.Generator().manual_seed(self.split_seed)).tolist()
        n_val = max(1, round(len(order) * self.val_fraction))
        return Subset(augmented, order[n_val:]), Subset(plain, order[:n_val])

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)
