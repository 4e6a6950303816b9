"""LightningDataModules for MNIST, CIFAR-10, image folders and image files.

Installed, this package is ``cnnlab.datamodules``; it imports nothing of the ``cnnlab`` application.
"""

from .base import ClassificationDataModule
from .cifar10 import CIFAR10DataModule
from .files import ImageFilesDataModule
from .image_folder import ImageFolderDataModule
from .mnist import MNISTDataModule

__all__ = [
    "CIFAR10DataModule",
    "ClassificationDataModule",
    "ImageFilesDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
]
