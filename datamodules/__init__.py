"""LightningDataModules for MNIST, CIFAR-10 and image folders."""

from datamodules.base import ClassificationDataModule
from datamodules.cifar10 import CIFAR10DataModule
from datamodules.image_folder import ImageFolderDataModule
from datamodules.mnist import MNISTDataModule

__all__ = ["CIFAR10DataModule", "ClassificationDataModule", "ImageFolderDataModule", "MNISTDataModule"]
