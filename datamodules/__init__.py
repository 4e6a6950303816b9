"""LightningDataModules for MNIST, CIFAR-10, image folders and image files.

Installed, this package is ``cnnlab.datamodules``; it imports nothing of the ``cnnlab`` application.
Its names load on first use, so ``cnnlab.datamodules.errors`` costs no torch import.
"""

import importlib

_WHERE = {
    "ClassificationDataModule": "base",
    "CIFAR10DataModule": "cifar10",
    "ImageFilesDataModule": "files",
    "ImageFolderDataModule": "image_folder",
    "MNISTDataModule": "mnist",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
