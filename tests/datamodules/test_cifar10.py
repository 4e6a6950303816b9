from types import SimpleNamespace

import pytest
import torch

from cnnlab.datamodules import CIFAR10DataModule
from cnnlab.datamodules.errors import DataNotFoundError


def test_reads_pickled_batches(cifar_root):
    dm = CIFAR10DataModule(data_dir=str(cifar_root), batch_size=8, num_workers=0, download=False)
    dm.setup("fit")
    dm.setup("test")
    assert (dm.num_classes, dm.in_channels, dm.image_size) == (10, 3, 32)
    assert dm.class_names[0] == "airplane" and dm.class_names[-1] == "truck"
    assert len(dm.train_set) + len(dm.val_set) == 200 and len(dm.val_set) == 20
    assert len(dm.test_set) == 60
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 3, 32, 32) and y.shape == (8,)


def test_per_image_path_augments_training_images_only(cifar_root):
    dm = CIFAR10DataModule(data_dir=str(cifar_root), num_workers=0, download=False, fast=False)
    dm.setup("fit")
    index = dm.train_set.indices[0]
    augmented = dm.train_set.dataset
    views = torch.stack([augmented[index][0] for _ in range(8)])
    assert (views != views[0]).any(), "random crop and flip should change the view"
    plain = dm.val_set.dataset
    torch.testing.assert_close(plain[index][0], plain[index][0])
    assert augmented[index][1] == plain[index][1]


def test_missing_data_is_one_clear_line(tmp_path):
    with pytest.raises(
        DataNotFoundError, match=r"CIFAR-10 not found in .*cifar-10-batches-py; set --data.download"
    ):
        CIFAR10DataModule(data_dir=str(tmp_path), download=False).setup("test")


def test_fast_path_augments_training_batches_only(cifar_root):
    dm = CIFAR10DataModule(data_dir=str(cifar_root), batch_size=16, download=False)
    dm.setup("fit")
    images, labels = next(iter(dm.val_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (16, 3, 32, 32)
    dm.trainer = SimpleNamespace(training=False)
    plain = dm.on_after_batch_transfer((images, labels), 0)[0]
    dm.trainer = SimpleNamespace(training=True)
    augmented, same_labels = dm.on_after_batch_transfer((images, labels), 0)
    assert augmented.shape == plain.shape and augmented.dtype == torch.float32
    assert not torch.equal(augmented, plain)
    assert torch.equal(same_labels, labels)
