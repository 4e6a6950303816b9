import shutil

import pytest

from cnnlab.datamodules import ImageFolderDataModule
from cnnlab.datamodules.errors import DataError, DataNotFoundError
from tests.fakedata import make_image_folder


def test_classes_sizes_and_statistics_come_from_the_folder(folder_root):
    dm = ImageFolderDataModule(data_dir=str(folder_root), batch_size=4, num_workers=0)
    assert dm.class_names == ["circle", "square", "triangle"]
    assert (dm.num_classes, dm.in_channels, dm.image_size) == (3, 3, 24)
    dm.setup("fit")
    assert len(dm.train_set) + len(dm.val_set) == 48
    # Mean of the noisy background plus the bright bars: well between black and white.
    assert all(0.1 < m < 0.5 for m in dm.mean) and all(s > 0.1 for s in dm.std)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 24, 24)
    assert dm.state_dict()["mean"] == list(dm.mean)


def test_resize_grayscale_and_val_folder(tmp_path):
    root = make_image_folder(tmp_path, splits=("train", "val", "test"), size=20)
    dm = ImageFolderDataModule(data_dir=str(root), image_size=16, channels=1, batch_size=3, num_workers=0)
    dm.setup("fit")
    assert len(dm.val_set) == 18  # the val/ folder, not a split of train/
    assert len(dm.train_set) == 48
    x, _ = next(iter(dm.val_dataloader()))
    assert x.shape == (3, 1, 16, 16)


def test_test_classes_must_match_training_classes(tmp_path):
    root = make_image_folder(tmp_path)
    shutil.rmtree(root / "test" / "square")
    with pytest.raises(DataError, match=r"test/ differ from train/ \(only in train/: \['square'\]"):
        ImageFolderDataModule(data_dir=str(root))


def test_missing_folder_explains_the_layout(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"no class folders in .*train; .*train/<class>/<image>"):
        ImageFolderDataModule(data_dir=str(tmp_path / "photos"))
