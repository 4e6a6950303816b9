"""Fashion-MNIST, KMNIST, CIFAR-100, SVHN and STL-10: torchvision's loaders read tiny files in each data
set's own format; cnnlab keeps them in memory, holds out validation, names the classes, normalises."""

import pickle
import sys

import pytest
import torch

from cnnlab.cli import build
from cnnlab.datamodules import (
    CIFAR100DataModule,
    FashionMNISTDataModule,
    KMNISTDataModule,
    STL10DataModule,
    SVHNDataModule,
)
from cnnlab.datamodules.errors import DataError, DataNotFoundError
from tests.cli_args import QUIET, on_data, recipe, run_main

# module, its fake data's fixture, (channels, size), classes, (first, last) class name, folder under data_dir
SETS = {
    "FashionMNISTDataModule": (FashionMNISTDataModule, "fashion_mnist_root", (1, 28), 10,
                               ("T-shirt/top", "Ankle boot"), "FashionMNIST/raw"),
    "KMNISTDataModule": (KMNISTDataModule, "kmnist_root", (1, 28), 10, ("o", "wo"), "KMNIST/raw"),
    "CIFAR100DataModule": (CIFAR100DataModule, "cifar100_root", (3, 32), 100, ("apple", "worm"),
                           "cifar-100-python"),
    "SVHNDataModule": (SVHNDataModule, "svhn_root", (3, 32), 10, ("0", "9"), "SVHN"),
    "STL10DataModule": (STL10DataModule, "stl10_root", (3, 96), 10, ("airplane", "truck"), "stl10_binary"),
}  # fmt: skip
# training and test images of the fake data sets (tests/fakedata.py)
SIZES = {"fashion_mnist_root": (400, 100), "kmnist_root": (400, 100), "cifar100_root": (200, 60),
         "svhn_root": (200, 60), "stl10_root": (100, 40)}  # fmt: skip
RECIPES = {
    "FashionMNISTDataModule": "fashion_mnist_lenet5",
    "KMNISTDataModule": "kmnist_lenet5",
    "CIFAR100DataModule": "cifar100_resnet18",
    "SVHNDataModule": "svhn_resnet20",
    "STL10DataModule": "stl10_resnet18",
}


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])


def module(name: str, request, **options):
    cls, fixture, *_ = SETS[name]
    root = request.getfixturevalue(fixture)
    return cls(data_dir=str(root), batch_size=16, num_workers=0, download=False, **options)


@pytest.mark.parametrize("name", SETS)
def test_reads_the_files_with_a_held_out_validation_split(name, request):
    _, fixture, (channels, size), classes, (first, last), _ = SETS[name]
    dm = module(name, request)
    dm.prepare_data()  # download false: checks the files are there
    dm.setup("fit")
    dm.setup("test")
    assert (dm.num_classes, dm.in_channels, dm.image_size) == (classes, channels, size)
    assert len(dm.class_names) == classes and (dm.class_names[0], dm.class_names[-1]) == (first, last)
    n_train, n_test = SIZES[fixture]
    assert len(dm.val_set) == round(n_train * 0.1) and len(dm.train_set) == n_train - len(dm.val_set)
    assert not set(dm.train_set.indices) & set(dm.val_set.indices)
    assert len(dm.test_set) == n_test
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (16, channels, size, size) and images.dtype == torch.uint8
    assert 0 <= labels.min() and labels.max() < classes


@pytest.mark.parametrize("name", SETS)
def test_fast_path_holds_the_images_torchvision_gives(name, request):
    """The in-memory tensors (from torchvision's arrays) equal torchvision's own per-image output, so
    the layout (NHW, NHWC or NCHW) and the labels are read right; both paths normalise alike."""
    fast, slow = module(name, request), module(name, request, fast=False)
    fast.setup("test")
    slow.setup("test")
    for index in (0, 7):
        image, label = fast.test_set[index]
        plain, same_label = slow.test_set[index]
        assert label == same_label
        torch.testing.assert_close(fast.normalize(image[None])[0], plain)


@pytest.mark.parametrize("name", SETS)
def test_normalisation_uses_the_data_sets_statistics(name, request):
    dm = module(name, request)
    channels = SETS[name][2][0]
    assert len(dm.mean) == len(dm.std) == channels
    mean = torch.tensor(dm.mean).view(1, -1, 1, 1)
    at_mean = (mean * 255).round().to(torch.uint8).expand(1, channels, 4, 4)
    assert dm.normalize(at_mean).abs().max() < 0.02  # an image at the mean is zero
    one_std_up = ((mean + torch.tensor(dm.std).view(1, -1, 1, 1)) * 255).round().to(torch.uint8)
    torch.testing.assert_close(dm.normalize(one_std_up), torch.ones(1, channels, 1, 1), atol=0.02, rtol=0)


@pytest.mark.parametrize("name", SETS)
def test_missing_data_says_where_it_looked_and_how_to_get_it(name, tmp_path):
    cls, *_, folder = SETS[name]
    with pytest.raises(DataNotFoundError) as err:
        cls(data_dir=str(tmp_path), download=False).setup("fit")
    message = str(err.value)
    assert str(tmp_path / folder) in message and "\n" not in message
    assert "--data.download true" in message and f"holds {folder.split('/')[0]}/" in message


@pytest.mark.parametrize("name", ["SVHNDataModule", "STL10DataModule"])
def test_missing_data_is_one_line_with_exit_status_2(name, in_tmp, capsys):
    code, err = run_main(["fit", *recipe(RECIPES[name]), *on_data(in_tmp / "empty"), *QUIET], capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("cnnlab: error: ") and "not found in" in err and "--data.download true" in err


@pytest.mark.parametrize("name", SETS)
def test_data_name_selects_the_module_and_sizes_the_model(name, request, in_tmp):
    _, fixture, (channels, size), classes, *_ = SETS[name]
    root = request.getfixturevalue(fixture)
    built = build(["--data", name, "--model.arch", "simplecnn", *on_data(root), *QUIET])
    assert type(built.datamodule).__name__ == name
    hparams = built.model.hparams
    assert (hparams.num_classes, hparams.in_channels, hparams.image_size) == (classes, channels, size)
    assert hparams.class_names == built.datamodule.class_names
    assert built.model(torch.zeros(2, channels, size, size)).shape == (2, classes)


@pytest.mark.parametrize("labels", ["fine", "coarse"])
def test_cifar100_labels_and_names_come_from_the_chosen_set(labels, cifar100_root):
    dm = CIFAR100DataModule(data_dir=str(cifar100_root), download=False, labels=labels)
    dm.setup("test")
    meta = pickle.loads((cifar100_root / "cifar-100-python" / "meta").read_bytes())
    assert dm.class_names == meta[f"{labels}_label_names"]
    assert dm.num_classes == (100 if labels == "fine" else 20)
    written = pickle.loads((cifar100_root / "cifar-100-python" / "test").read_bytes())
    assert dm.test_set.labels.tolist() == written[f"{labels}_labels"]


def test_cifar100_refuses_a_meta_file_naming_other_classes(tmp_path):
    from tests.fakedata import make_cifar100

    root = make_cifar100(tmp_path, n_train=20, n_test=10)
    meta = root / "cifar-100-python" / "meta"
    names = pickle.loads(meta.read_bytes())
    names["coarse_label_names"] = ["x", *names["coarse_label_names"][1:]]
    meta.write_bytes(pickle.dumps(names))
    CIFAR100DataModule(data_dir=str(root), download=False).setup("test")  # the fine names are intact
    with pytest.raises(
        DataError, match=r"meta names other coarse classes than CIFAR-100's .*--data.data_dir"
    ):
        CIFAR100DataModule(data_dir=str(root), download=False, labels="coarse").setup("test")


def test_cifar100_labels_option_is_checked():
    with pytest.raises(DataError, match="--data.labels must be 'fine' .* or 'coarse'"):
        CIFAR100DataModule(labels="superclass")


def test_svhn_labels_the_digit_zero_0_and_extra_joins_training(svhn_root):
    from scipy.io import loadmat

    written = loadmat(svhn_root / "SVHN" / "test_32x32.mat")["y"].ravel()
    dm = SVHNDataModule(data_dir=str(svhn_root), download=False)
    dm.setup("test")
    assert 10 in written and dm.test_set.labels.tolist() == [0 if y == 10 else int(y) for y in written]
    with_extra = SVHNDataModule(data_dir=str(svhn_root), download=False, extra=True)
    with_extra.setup("fit")
    assert len(with_extra.train_set) + len(with_extra.val_set) == 200 + 50
    assert with_extra.augmentation()["flip"] is False  # mirrored digits are other digits or none


def test_stl10_keeps_to_the_labelled_splits(stl10_root):
    dm = STL10DataModule(data_dir=str(stl10_root), download=False)
    dm.setup("fit")
    assert len(dm.train_set) + len(dm.val_set) == 100  # not the unlabelled images
    written = (stl10_root / "stl10_binary" / "train_y.bin").read_bytes()
    assert dm.train_set.dataset.labels.tolist() == [y - 1 for y in written]
    assert dm.augmentation()["crop_padding"] == 12 and dm.augmentation()["flip"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SETS)
def test_recipe_fits_one_short_epoch_and_tests(name, request, in_tmp):
    from cnnlab.lightning_cli import CNNLabCLI

    root = request.getfixturevalue(SETS[name][1])
    limits = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
              "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1"]  # fmt: skip
    cli = CNNLabCLI(
        ["fit", *recipe(RECIPES[name]), "--data", name, *on_data(root, batch_size=16), *limits, *QUIET]
    )
    assert cli.trainer.global_step == 2
    assert type(cli.datamodule).__name__ == name
    assert 0.0 <= float(cli.trainer.callback_metrics["test/acc"]) <= 1.0


def test_svhn_without_scipy_says_how_to_install_it(svhn_root, monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.io", None)  # import scipy.io fails as if not installed
    with pytest.raises(DataError, match=r"needs scipy .*pip install 'scipy>=1.10,<2'"):
        SVHNDataModule(data_dir=str(svhn_root), download=False).setup("test")


def test_svhn_extra_missing_names_the_extra_split(tmp_path):
    from tests.fakedata import make_svhn

    root = make_svhn(tmp_path, n_train=20, n_test=10, n_extra=5)
    (root / "SVHN" / "extra_32x32.mat").unlink()
    SVHNDataModule(data_dir=str(root), download=False).setup("fit")  # train and test are there
    with pytest.raises(DataNotFoundError, match=r"SVHN's extra split not found in .*SVHN; set --data.downl"):
        SVHNDataModule(data_dir=str(root), download=False, extra=True).setup("fit")
