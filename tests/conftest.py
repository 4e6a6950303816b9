import os

import pytest
import torchvision

from tests.fakedata import make_cifar10, make_image_folder, make_mnist


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory):
    return make_mnist(tmp_path_factory.mktemp("mnist"))


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory):
    return make_cifar10(tmp_path_factory.mktemp("cifar"))


@pytest.fixture(scope="session")
def folder_root(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("folder"))


@pytest.fixture(autouse=True)
def _accept_tiny_cifar(monkeypatch):
    # torchvision checks the real batches' md5 sums; the tiny batches only need to exist.
    monkeypatch.setattr(
        torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path)
    )


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty folder, so lightning_logs/ and data/ land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
