"""MNIST and the data sets in its IDX format (Fashion-MNIST, KMNIST) through torchvision's classes, which
read the files under ``<data_dir>/<class name>/raw``."""

from torchvision.datasets import KMNIST, MNIST, FashionMNIST

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


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST (Xiao et al. 2017): 60,000 training and 10,000 test clothing photos, 1x28x28.

    Ten classes of Zalando's articles in MNIST's IDX format, read by ``torchvision.datasets.FashionMNIST``.
    No training augmentation, as for MNIST.

    ``data_dir`` is the folder that holds ``FashionMNIST/``.
    """

    dataset_cls = FashionMNIST
    dataset_name = "Fashion-MNIST"
    dataset_folder = "FashionMNIST/raw"
    class_names = list(FashionMNIST.classes)
    # per-pixel statistics of the 60,000 training images
    mean = (0.2860,)
    std = (0.3530,)


class KMNISTDataModule(MNISTDataModule):
    """Kuzushiji-MNIST (Clanuwat et al. 2018): 60,000 training and 10,000 test characters, 1x28x28.

    Ten cursive Japanese hiragana, one of each row of the syllabary, in MNIST's IDX format, read by
    ``torchvision.datasets.KMNIST``. No training augmentation.

    ``data_dir`` is the folder that holds ``KMNIST/``. Class names are the characters' romanised readings.
    """

    dataset_cls = KMNIST
    dataset_name = "KMNIST"
    dataset_folder = "KMNIST/raw"
    class_names = list(KMNIST.classes)
    # per-pixel statistics of the 60,000 training images
    mean = (0.1918,)
    std = (0.3483,)
