import os
from pathlib import Path

import pytest
import torchvision

from tests.fakedata import make_cifar10, make_cifar100, make_image_folder, make_mnist, make_stl10, make_svhn


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory):
    return make_mnist(tmp_path_factory.mktemp("mnist"))


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory):
    return make_cifar10(tmp_path_factory.mktemp("cifar"))


@pytest.fixture(scope="session")
def fashion_mnist_root(tmp_path_factory):
    return make_mnist(tmp_path_factory.mktemp("fashion"), folder="FashionMNIST")


@pytest.fixture(scope="session")
def kmnist_root(tmp_path_factory):
    return make_mnist(tmp_path_factory.mktemp("kmnist"), folder="KMNIST")


@pytest.fixture(scope="session")
def cifar100_root(tmp_path_factory):
    return make_cifar100(tmp_path_factory.mktemp("cifar100"))


@pytest.fixture(scope="session")
def svhn_root(tmp_path_factory):
    return make_svhn(tmp_path_factory.mktemp("svhn"))


@pytest.fixture(scope="session")
def stl10_root(tmp_path_factory):
    return make_stl10(tmp_path_factory.mktemp("stl10"))


@pytest.fixture(scope="session")
def folder_root(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("folder"))


@pytest.fixture(autouse=True)
def _accept_tiny_files(monkeypatch):
    # torchvision checks the real files' md5 sums; the tiny files only need to exist.
    for module in (torchvision.datasets.cifar, torchvision.datasets.svhn, torchvision.datasets.stl10):
        monkeypatch.setattr(module, "check_integrity", lambda path, md5=None: os.path.isfile(path))


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty folder, so lightning_logs/ and data/ land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def fit_runs(tmp_path_factory, mnist_root):
    """Three tiny real ``cnnlab fit`` runs on the fake MNIST: (logs folder, {run: best val/acc})."""
    from cnnlab.lightning_cli import CNNLabCLI
    from tests.cli_args import QUIET, inside, on_data, recipe

    root = tmp_path_factory.mktemp("runs")
    best = {}
    with inside(root):
        for name, epochs in [("mnist_lenet5", 2), ("mnist_cnn", 1), ("mnist_lenet5", 1)]:
            data = on_data(mnist_root, batch_size=64, workers=0)
            cli = CNNLabCLI(args=["fit", *recipe(name), *data, "--trainer.max_epochs", str(epochs), *QUIET])
            run = Path(cli.trainer.log_dir)
            best[f"{run.parent.name}/{run.name}"] = float(cli.trainer.checkpoint_callback.best_model_score)
    return root / "lightning_logs", best
