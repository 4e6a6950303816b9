import os
import sys
from pathlib import Path

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


@pytest.fixture(scope="session")
def fit_runs(tmp_path_factory, mnist_root):
    """Three tiny real ``cnnlab fit`` runs on the fake MNIST: (logs folder, {run: best val/acc})."""
    from cnnlab.cli import CNNLabCLI

    root, cwd, argv = tmp_path_factory.mktemp("runs"), os.getcwd(), sys.argv
    recipes = Path(__file__).resolve().parents[1] / "experiments"
    best = {}
    try:
        os.chdir(root)
        sys.argv = ["cnnlab"]
        for recipe, epochs in [("mnist_lenet5", 2), ("mnist_cnn", 1), ("mnist_lenet5", 1)]:
            cli = CNNLabCLI(
                args=["fit", "--config", str(recipes / f"{recipe}.yaml"), "--data.data_dir", str(mnist_root),
                      "--data.download", "false", "--data.num_workers", "0", "--data.batch_size", "64",
                      "--trainer.max_epochs", str(epochs), "--trainer.enable_progress_bar", "false",
                      "--trainer.enable_model_summary", "false"]  # fmt: skip
            )
            run = Path(cli.trainer.log_dir)
            best[f"{run.parent.name}/{run.name}"] = float(cli.trainer.checkpoint_callback.best_model_score)
    finally:
        os.chdir(cwd)
        sys.argv = argv
    return root / "lightning_logs", best
