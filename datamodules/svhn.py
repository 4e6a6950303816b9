"""SVHN through ``torchvision.datasets.SVHN`` (the ``.mat`` files in ``<data_dir>/SVHN``, read with scipy)."""

from torchvision.datasets import SVHN

from .base import ClassificationDataModule
from .errors import DataError


class SVHNDataModule(ClassificationDataModule):
    """SVHN (Netzer et al. 2011): 73,257 training and 26,032 test house-number digits, 3x32x32, ten classes.

    The Street View House Numbers' cropped digits; torchvision labels the digit 0 as 0, not the files' 10.
    Training augmentation: random 32x32 crop of the image padded by 4; no flip, which would mirror the
    digits. ``data_dir`` is the folder that holds ``SVHN/`` (torchvision keeps the files directly in its
    root; cnnlab gives them their own folder, as torchvision does for MNIST).

    Its other arguments are ``ClassificationDataModule``'s.

    Args:
        extra: add the 531,131 easier ``extra`` images to the training set (the validation images are
            then held out of both).
    """

    dataset_cls = SVHN
    dataset_name = "SVHN"
    dataset_folder = "SVHN"
    channels_first = True
    num_classes = 10
    in_channels = 3
    image_size = 32
    class_names = [str(d) for d in range(10)]
    # per-channel statistics of the 73,257 training images
    mean = (0.4377, 0.4438, 0.4728)
    std = (0.1980, 0.2010, 0.1970)

    def __init__(self, extra: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.extra = extra

    def _augmentation_defaults(self) -> dict:
        return {"crop_padding": 4, "flip": False}

    def _sources(self, split: str) -> tuple[str, ...]:
        return ("train", "extra") if split == "train" and self.extra else (split,)

    def _torchvision(self, source: str, transform, download: bool):
        try:
            root = str(self.data_dir / self.dataset_folder)
            return SVHN(root, split=source, transform=transform, download=download)
        except ModuleNotFoundError as err:  # torchvision imports scipy only to read the .mat files
            raise DataError(
                f"reading SVHN's .mat files needs scipy ({err}); install it with pip install 'scipy>=1.10,<2'"
            ) from err
