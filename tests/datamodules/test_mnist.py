import pytest
import torch

from cnnlab.datamodules import MNISTDataModule
from cnnlab.datamodules.errors import DataError, DataNotFoundError


@pytest.mark.parametrize("fast", [True, False])
def test_reads_idx_files_with_a_seeded_validation_split(mnist_root, fast):
    dm = MNISTDataModule(data_dir=str(mnist_root), batch_size=16, num_workers=0, download=False, fast=fast)
    dm.prepare_data()
    dm.setup("fit")
    assert (dm.num_classes, dm.in_channels, dm.image_size) == (10, 1, 28)
    assert len(dm.train_set) == 360 and len(dm.val_set) == 40
    assert not set(dm.train_set.indices) & set(dm.val_set.indices)

    x, y = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert x.shape == (16, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    # Normalised with MNIST's statistics: the background (pixel values below 50) is below zero.
    assert x.min() < -0.3 and x.max() > 2.5

    again = MNISTDataModule(data_dir=str(mnist_root), num_workers=0, download=False)
    again.setup("fit")
    assert again.val_set.indices == dm.val_set.indices
    other = MNISTDataModule(data_dir=str(mnist_root), num_workers=0, download=False, split_seed=1)
    other.setup("fit")
    assert other.val_set.indices != dm.val_set.indices


def test_test_split_is_the_t10k_files(mnist_root):
    dm = MNISTDataModule(data_dir=str(mnist_root), batch_size=100, num_workers=0, download=False)
    dm.setup("test")
    assert len(dm.test_set) == 100
    assert len(next(iter(dm.test_dataloader()))[0]) == 100


def test_missing_data_names_the_folder_and_how_to_get_it(tmp_path):
    dm = MNISTDataModule(data_dir=str(tmp_path / "nowhere"), download=False)
    with pytest.raises(DataNotFoundError) as err:
        dm.setup("fit")
    message = str(err.value)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in message
    assert "--data.download true" in message and "--data.data_dir" in message
    assert "\n" not in message


def test_val_fraction_must_leave_training_images():
    with pytest.raises(DataError, match="val_fraction"):
        MNISTDataModule(val_fraction=1.0)
