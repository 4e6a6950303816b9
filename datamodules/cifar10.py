"""CIFAR-10 through ``torchvision.datasets.CIFAR10`` (the pickled batches in ``cifar-10-batches-py``)."""

from torchvision.datasets import CIFAR10

from .base import ClassificationDataModule


class CIFAR10DataModule(ClassificationDataModule):
    """CIFAR-10: 50,000 training and 10,000 test images, 3x32x32, ten classes.

    Training augmentation: random 32x32 crop of the image padded by 4, horizontal flip.
    ``data_dir`` is the folder that holds ``cifar-10-batches-py/``. For the JPEG image-folder copy use
    ``ImageFolderDataModule``.
    """

    dataset_cls = CIFAR10
    dataset_name = "CIFAR-10"
    dataset_folder = "cifar-10-batches-py"
    num_classes = 10
    in_channels = 3
    image_size = 32
    class_names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)

    def _augmentation_defaults(self) -> dict:
        return {"crop_padding": 4, "flip": True}
