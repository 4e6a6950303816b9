"""The shared part of every data module: validation split, augmentation, normalisation, loaders.

Two data paths serve the same images:

* fast (default): a split lives in memory as one uint8 tensor (``InMemoryImages``), batches are index
  lookups, and augmentation and normalisation run per batch on the training device in
  ``on_after_batch_transfer``;
* per-image (``fast: false``): torchvision data sets with per-image transforms in DataLoader workers,
  for users who want to plug in arbitrary transforms.

A subclass names its splits and how to open them, its augmentation (``_augmentation_defaults``), and
sets ``num_classes``, ``in_channels``, ``image_size`` and ``class_names`` in its constructor, so the
CLI can pass them to the model before anything is loaded.
"""

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from .augment import Cutout, augment_batch, random_erasing
from .errors import DataError, DataNotFoundError
from .memory import AlternatingFlip, InMemoryImages, keep_batch
from .policies import NUM_BINS, POLICIES, per_image_policy
from .predict import PredictImages, find_files


class ClassificationDataModule(L.LightningDataModule):
    """Image classification data with a seeded validation split carved from the training set.

    Args:
        data_dir: folder that holds the data set (downloaded there when ``download`` is true).
        batch_size: images per batch, for every split.
        num_workers: DataLoader worker processes of the per-image path (and of image decoding).
        val_fraction: share of the training set held out for validation (the test split is never used
            for model selection); 0 trains on every training image and skips validation (as airbench94
            does; checkpoints are then chosen by nothing but their epoch: ``last.ckpt``).
        split_seed: seed of the validation split, fixed so every run of a recipe validates on the same images.
        augment: apply the training augmentation (the data set's usual one, plus ``translate``/``cutout``).
        download: fetch the data set when it is missing.
        fast: keep the data in memory and augment whole batches on the device; ``false`` for the
            per-image torchvision transform path.
        pad_mode: padding of the random crop, ``zeros`` or ``reflect``.
        translate: extra random shift of up to this many pixels (zero fill); 0 for none.
        cutout: side of a square zeroed at a random place of each training image; 0 for none.
        crop_padding: padding of the random crop, replacing the data set's usual one (CIFAR-10: 4).
        auto_augment: an augmentation policy applied to each training image after crop, flip and shift,
            with torchvision's semantics: ``none``, ``randaugment`` (RandAugment, ``randaugment_n`` ops at
            magnitude ``randaugment_m`` of 31 bins), ``trivialaugment`` (TrivialAugmentWide) or
            ``autoaugment`` (AutoAugment's CIFAR-10 policy).
        randaugment_n, randaugment_m: RandAugment's number of ops per image and magnitude bin (0-30).
        random_erasing: probability of torchvision's ``RandomErasing`` per training image, applied after
            normalisation as in torchvision's reference recipes (erased pixels become 0, the mean colour).
        alternate_flip: instead of mirroring each training image at random in each epoch, mirror a
            random half in even epochs and the other half in odd ones (airbench94); fast path only.
        predict_dir: what ``cnnlab predict`` classifies: a folder (searched recursively) or a list of
            image files and folders; images are converted and resized to the training data's shape.
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
        fast: bool = True,
        pad_mode: str = "zeros",
        translate: int = 0,
        cutout: int = 0,
        crop_padding: int | None = None,
        auto_augment: str = "none",
        randaugment_n: int = 2,
        randaugment_m: int = 9,
        random_erasing: float = 0.0,
        alternate_flip: bool = False,
        predict_dir: str | list[str] | None = None,
    ):
        super().__init__()
        if not 0.0 <= val_fraction < 1.0:
            raise DataError(
                f"--data.val_fraction must be from 0 (no validation) to below 1 (the share of training "
                f"images held out for validation, e.g. 0.1), got {val_fraction}"
            )
        if alternate_flip and not fast:
            raise DataError("--data.alternate_flip needs the fast path; leave --data.fast true")
        if pad_mode not in ("zeros", "reflect"):
            raise DataError(f"--data.pad_mode must be 'zeros' or 'reflect', got {pad_mode!r}")
        if batch_size < 1:
            raise DataError(f"--data.batch_size must be 1 or more images, got {batch_size}")
        if auto_augment not in POLICIES:
            raise DataError(f"--data.auto_augment must be one of {', '.join(POLICIES)}, got {auto_augment!r}")
        if not 0 <= randaugment_m < NUM_BINS:
            raise DataError(
                f"--data.randaugment_m must be a magnitude bin from 0 to {NUM_BINS - 1}, got {randaugment_m}"
            )
        if not 0.0 <= random_erasing <= 1.0:
            raise DataError(f"--data.random_erasing must be a probability from 0 to 1, got {random_erasing}")
        counts = {"num_workers": num_workers, "translate": translate, "cutout": cutout}
        counts["randaugment_n"] = randaugment_n
        for name, value in {**counts, "crop_padding": crop_padding or 0}.items():
            if value < 0:
                raise DataError(f"--data.{name} must be 0 or more, got {value}")
        self.data_dir = Path(data_dir).expanduser()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.augment = augment
        self.download = download
        self.fast = fast
        self.pad_mode = pad_mode
        self.translate = translate
        self.cutout = cutout
        self.crop_padding = crop_padding
        self.auto_augment = auto_augment
        self.randaugment_n = randaugment_n
        self.randaugment_m = randaugment_m
        self.random_erasing = random_erasing
        self.alternate_flip = alternate_flip
        self.predict_dir = predict_dir
        self.train_set = self.val_set = self.test_set = self.predict_set = None
        self.skipped: dict[str, list[str]] = {}  # split -> files that could not be read, left out
        self._in_memory: dict[str, InMemoryImages] = {}

    # -- what a subclass provides -------------------------------------------------------------------
    # A torchvision data set class taking (root, train, transform, download), its display name and the
    # folder it keeps under data_dir; classes taking ``split=`` override _torchvision, subclasses over
    # other sources override the _open* methods.
    dataset_cls: type | None = None
    dataset_name: str = ""
    dataset_folder: str = ""
    # torchvision keeps MNIST's images as NHW and CIFAR's as NHWC arrays, SVHN's and STL-10's as NCHW.
    channels_first: bool = False

    def _augmentation_defaults(self) -> dict:
        """The data set's usual training augmentation: ``crop_padding`` and ``flip``."""
        return {}

    def _has_split(self, split: str) -> bool:
        return split in ("train", "test")

    def _sources(self, split: str) -> tuple[str, ...]:
        """The torchvision splits that make up ``split`` (SVHN's training set may add ``extra``)."""
        return (split,)

    def _torchvision(self, source: str, transform, download: bool) -> Dataset:
        """``dataset_cls`` opened on the torchvision split ``source``."""
        return self.dataset_cls(
            str(self.data_dir), train=source == "train", transform=transform, download=download
        )

    def _open(self, split: str, transform) -> Dataset:
        """The per-image data set of ``split`` with ``transform`` applied to each image."""
        parts = [self._open_torchvision(s, transform=transform, download=False) for s in self._sources(split)]
        return parts[0] if len(parts) == 1 else ConcatDataset(parts)

    def _open_memory(self, split: str) -> InMemoryImages:
        """``split`` as one uint8 tensor; torchvision's data set classes already hold theirs as arrays."""
        images, labels = [], []
        for source in self._sources(split):
            dataset = self._open_torchvision(source, transform=None, download=False)
            part = torch.as_tensor(dataset.data)
            if part.ndim == 3:  # NHW -> NCHW
                part = part[:, None]
            elif not self.channels_first:  # NHWC -> NCHW
                part = part.permute(0, 3, 1, 2)
            images.append(part)
            found = dataset.targets if hasattr(dataset, "targets") else dataset.labels  # SVHN, STL10: labels
            labels.append(torch.as_tensor(found, dtype=torch.long))
        return InMemoryImages(torch.cat(images).contiguous(), torch.cat(labels))

    def prepare_data(self) -> None:
        for split in ("train", "test"):
            for source in self._sources(split):
                self._open_torchvision(source, transform=None, download=self.download)

    def _decode(self) -> list:
        """Per-image transforms every split starts with (resizing, colour conversion)."""
        return []

    # -- augmentation and normalisation -------------------------------------------------------------
    def augmentation(self) -> dict:
        """Keyword arguments of ``augment_batch`` for the training images."""
        spec = {"crop_padding": 0, "flip": False, **self._augmentation_defaults()}
        if self.crop_padding is not None:
            spec["crop_padding"] = self.crop_padding
        if self.alternate_flip:  # the training set's AlternatingFlip mirrors instead
            spec["flip"] = False
        return {
            **spec,
            "pad_mode": self.pad_mode,
            "translate": self.translate,
            "cutout_size": self.cutout,
            "policy": self.auto_augment,
            "randaugment_n": self.randaugment_n,
            "randaugment_m": self.randaugment_m,
        }

    def _per_image_augmentation(self) -> tuple[list, list]:
        """The same augmentation as per-image transforms: (on the decoded image, on the uint8 tensor)."""
        spec, size = self.augmentation(), self.image_size
        pil_ops = []
        if spec["crop_padding"]:
            mode = "constant" if spec["pad_mode"] == "zeros" else "reflect"
            pil_ops.append(v2.RandomCrop(size, padding=spec["crop_padding"], padding_mode=mode))
        if spec["flip"]:
            pil_ops.append(v2.RandomHorizontalFlip())
        if spec["translate"]:
            pil_ops.append(v2.RandomCrop(size, padding=spec["translate"]))
        pil_ops += per_image_policy(spec["policy"], spec["randaugment_n"], spec["randaugment_m"])
        return pil_ops, [Cutout(spec["cutout_size"])] if spec["cutout_size"] else []

    def eval_transform(self) -> v2.Compose:
        return v2.Compose([*self._decode(), v2.ToImage(), *self._normalize()])

    def train_transform(self) -> v2.Compose:
        pil_ops, tensor_ops = self._per_image_augmentation() if self.augment else ([], [])
        erase = [v2.RandomErasing(self.random_erasing)] if self.augment and self.random_erasing else []
        return v2.Compose([*self._decode(), *pil_ops, v2.ToImage(), *tensor_ops, *self._normalize(), *erase])

    def _normalize(self) -> list:
        return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(self.mean, self.std)]

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 batch -> normalised float batch, with the same operations as the per-image path."""
        return TF.normalize(TF.to_dtype(images, torch.float32, scale=True), list(self.mean), list(self.std))

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        if self.fast and device.type == "cpu":
            return batch  # already there; skips a walk over the batch every step
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if getattr(self.trainer, "predicting", False):  # the user's files: (uint8 images, paths)
            images, paths = batch
            return self.normalize(images), paths
        if not self.fast:
            return batch
        images, labels = batch
        train = self.augment and self.trainer is not None and self.trainer.training
        if train:  # on the 0..255 images: the policies' ops are defined on them
            images = augment_batch(images, **self.augmentation())
        images = self.normalize(images)
        if train and self.random_erasing:
            images = random_erasing(images, self.random_erasing)
        return images, labels

    # -- splits ------------------------------------------------------------------------------------
    def _open_torchvision(self, source: str, transform, download: bool) -> Dataset:
        """Open the torchvision split ``source``, turning "not found" and failed downloads into one line."""
        looked_in = (self.data_dir / self.dataset_folder).resolve()
        if not looked_in.exists() and _is_image_folder(self.data_dir):
            raise DataNotFoundError(
                f"{self.data_dir} holds an image folder (train/<class>/<image>), not {self.dataset_name}'s "
                f"files; read it with --data ImageFolderDataModule --data.data_dir {self.data_dir}"
            )
        try:
            return self._torchvision(source, transform=transform, download=download)
        except (RuntimeError, OSError) as err:
            if download:
                reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
                raise DataNotFoundError(
                    f"could not download {self.dataset_name} to {looked_in} ({reason}); copy the files there "
                    "by hand or point --data.data_dir at an existing copy"
                ) from err
            if "not found" not in str(err).lower():
                raise
            what = self.dataset_name
            if source not in ("train", "test"):  # a split the user chose to add (SVHN's extra)
                what += f"'s {source} split"
            raise DataNotFoundError(
                f"{what} not found in {looked_in}; set --data.download true to download it, "
                f"or point --data.data_dir at the folder that holds {self.dataset_folder.split('/')[0]}/"
            ) from err

    def _dataset(self, split: str, augmented: bool) -> Dataset:
        if self.fast:
            if split not in self._in_memory:
                self._in_memory[split] = self._open_memory(split)
            return self._in_memory[split]
        return self._open(split, self.train_transform() if augmented else self.eval_transform())

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", "validate", None) and self.train_set is None:
            if self._has_split("val"):
                self.train_set, self.val_set = self._dataset("train", True), self._dataset("val", False)
            elif not self.val_fraction:
                self.train_set, self.val_set = self._dataset("train", True), None
            else:
                self.train_set, self.val_set = self._split(
                    self._dataset("train", True), self._dataset("train", False)
                )
            if self.alternate_flip and self.augment:
                # seeded by the run's seed (seed_everything), so a resumed run mirrors the same images
                self.train_set = AlternatingFlip(self.train_set, self._epoch, torch.initial_seed())
        if stage in ("test", None) and self.test_set is None:
            self.test_set = self._dataset("test", False)
        if stage == "predict" and self.predict_set is None:
            self.predict_set = self._predict_set()

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def _predict_set(self) -> PredictImages:
        if not self.predict_dir:
            raise DataError(
                "nothing to predict; pass --data.predict_dir with a folder of images or a list of image files"
            )
        return PredictImages(find_files(self.predict_dir), self.in_channels, self.image_size)

    def _split(self, augmented: Dataset, plain: Dataset) -> tuple[Subset, Subset]:
        """Hold out ``val_fraction`` of the training images; validation images are not augmented."""
        order = torch.randperm(len(plain), generator=torch.Generator().manual_seed(self.split_seed)).tolist()
        n_val = max(1, round(len(order) * self.val_fraction))
        return Subset(augmented, order[n_val:]), Subset(plain, order[:n_val])

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        pin = torch.cuda.is_available()
        if self.fast:  # batches are single index lookups: no worker processes needed
            return DataLoader(
                dataset, self.batch_size, shuffle=shuffle, collate_fn=keep_batch, pin_memory=pin
            )
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=pin,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:  # val_fraction 0: Lightning skips validation on an empty list
            return []
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def sample_images(self, split: str, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Up to ``count`` unaugmented images of ``split`` (``test``, or shuffled ``train``) as floats in
        [0, 1], with their labels: real inputs for checking, calibrating and measuring exported models."""
        saved = self.batch_size
        self.batch_size = min(count, 256)
        try:
            self.setup("test" if split == "test" else "fit")
            dataset = self.test_set if split == "test" else self.train_set
            loader = self._loader(dataset, shuffle=split != "test")
            images, labels, seen = [], [], 0
            for x, y in loader:
                if x.dtype == torch.uint8:  # fast path: raw images
                    x = x.float() / 255
                else:  # per-image path: normalised (and augmented, for train), undo the normalisation
                    x = x * torch.tensor(self.std).view(1, -1, 1, 1) + torch.tensor(self.mean).view(
                        1, -1, 1, 1
                    )
                images.append(x)
                labels.append(y)
                seen += len(x)
                if seen >= count:
                    break
        finally:
            self.batch_size = saved
        return torch.cat(images)[:count], torch.cat(labels)[:count]

    def predict_dataloader(self) -> DataLoader:
        dataset = self.predict_set
        return DataLoader(
            dataset, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=dataset.collate
        )


def _is_image_folder(folder: Path) -> bool:
    """``folder`` looks like ``ImageFolderDataModule``'s layout: ``train/<class>/`` folders."""
    train = folder / "train"
    return train.is_dir() and any(p.is_dir() for p in train.iterdir())
