"""MNIST through ``torchvision.datasets.MNIST`` (the IDX files under ``<data_dir>/MNIST/raw``)."""

from torchvision.datasets import MNIST

from .base import ClassificationDataModule


class MNISTDataModule(ClassificationDataModule):
    """MNIST: 60,000 training and 10,000 test digits, 1x28x28. No training augmentation.

    ``data_dir`` is the folder that holds ``MNIST/`` (torchvision's layout).
    """

    dataset_cls = MNIST
    dataset_name = "MNIST"
    dataset_folder = "MNIST/raw"
    num_classes = 10
    in_channels = 1
    image_size = 28
    class_names = [str(d) for d in range(10)]
    mean = (0.1307,)
    std = (0.3081,)
