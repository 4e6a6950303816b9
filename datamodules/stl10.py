"""STL-10 through ``torchvision.datasets.STL10`` (the binary files in ``stl10_binary``)."""

from torchvision.datasets import STL10

from .base import ClassificationDataModule


class STL10DataModule(ClassificationDataModule):
    """STL-10 (Coates et al. 2011): 5,000 labelled training and 8,000 test images, 3x96x96, ten classes.

    The 100,000 unlabelled images (for unsupervised learning) are not used, though torchvision wants
    their file present.

    Training augmentation: random 96x96 crop of the image padded by 12 (CIFAR's 4 pixels of 32, scaled
    to 96), horizontal flip. ``data_dir`` is the folder that holds ``stl10_binary/``.
    """

    dataset_cls = STL10
    dataset_name = "STL-10"
    dataset_folder = "stl10_binary"
    channels_first = True
    num_classes = 10
    in_channels = 3
    image_size = 96
    class_names = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
    # per-channel statistics of the 5,000 labelled training images
    mean = (0.4467, 0.4398, 0.4066)
    std = (0.2603, 0.2566, 0.2713)

    def _augmentation_defaults(self) -> dict:
        return {"crop_padding": 12, "flip": True}

    def _torchvision(self, source: str, transform, download: bool):
        return STL10(str(self.data_dir), split=source, transform=transform, download=download)
