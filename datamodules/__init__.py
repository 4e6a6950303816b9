"""LightningDataModules for MNIST, Fashion-MNIST, KMNIST, CIFAR-10, CIFAR-100, SVHN, STL-10, image folders
and image files.

Installed, this package is ``cnnlab.datamodules``; it imports nothing of the ``cnnlab`` application.
Its names load on first use, so ``cnnlab.datamodules.errors`` costs no torch import.
"""

import importlib

_WHERE = {
    "ClassificationDataModule": "base",
    "CIFAR10DataModule": "cifar10",
    "CIFAR100DataModule": "cifar100",
    "FashionMNISTDataModule": "mnist",
    "ImageFilesDataModule": "files",
    "ImageFolderDataModule": "image_folder",
    "KMNISTDataModule": "mnist",
    "MNISTDataModule": "mnist",
    "STL10DataModule": "stl10",
    "SVHNDataModule": "svhn",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
