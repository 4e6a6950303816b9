"""Image folders as they are found in the wild: links, loops, broken and 16-bit files, files changed
behind the cache's back, class names that are markup."""

import csv
import os
import pathlib
import shutil
import sys

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from cnnlab.cli import main
from cnnlab.datamodules import ImageFolderDataModule
from cnnlab.datamodules.errors import DataNotFoundError
from tests.cli_args import QUIET, on_folder
from tests.fakedata import make_image_folder


def module(root, cache, **kwargs) -> ImageFolderDataModule:
    fixed = {"num_workers": 0, "cache_dir": str(cache), "mean": [0.5] * 3, "std": [0.5] * 3}
    return ImageFolderDataModule(str(root), **fixed, **kwargs)


class Payload:
    """Unpickling this creates ``path``: code hidden in a file put in the cache's place."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def test_symlinked_files_and_folders_count_once_and_a_loop_is_not_followed(tmp_path):
    root = make_image_folder(tmp_path / "photos", n_train=4, n_test=2)
    extra = make_image_folder(tmp_path / "more", n_train=3, n_test=1, seed=1)
    circle = root / "train" / "circle"
    (circle / "linked").symlink_to(extra / "train" / "circle")  # a linked folder: its 3 images count
    (circle / "again.png").symlink_to(circle / "000.png")  # the same file twice: counts once
    (circle / "loop").symlink_to(circle)  # a loop: not entered again
    dm = module(root, tmp_path / "cache", val_fraction=0.25)
    dm.setup("fit")
    assert len(dm.train_set) + len(dm.val_set) == 3 * 4 + 3


@pytest.mark.parametrize("fast", [True, False])
def test_unreadable_files_are_named_skipped_and_counted(fast, tmp_path, capsys):
    root = make_image_folder(tmp_path / "photos", n_train=4, n_test=2)
    square = root / "train" / "square"
    (square / "empty.png").write_bytes(b"")
    (square / "cut.png").write_bytes((square / "000.png").read_bytes()[:60])
    (square / "text.jpg").write_text("not an image")
    dm = module(root, tmp_path / "cache", fast=fast, val_fraction=0.25)
    dm.setup("fit")
    images = [dm.train_set[i][0] for i in range(len(dm.train_set))] + [
        dm.val_set[i][0] for i in range(len(dm.val_set))
    ]
    assert all(image is not None for image in images)
    err = capsys.readouterr().err
    for name in ("empty.png", "cut.png", "text.jpg"):
        assert f"cnnlab: skipping {square / name}" in err
    if fast:
        assert len(dm.train_set) + len(dm.val_set) == 12 and len(dm.skipped["train"]) == 3
        assert f"cnnlab: 3 of 15 files in {root / 'train'} skipped" in err


def test_a_split_with_no_readable_image_is_one_line(tmp_path):
    root = make_image_folder(tmp_path / "photos", n_train=2, n_test=1)
    for path in (root / "test").rglob("*.png"):
        path.write_bytes(b"broken")
    with pytest.raises(DataNotFoundError, match="no readable images in .*test"):
        module(root, tmp_path / "cache").setup("test")


def test_a_run_records_how_many_files_it_skipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["cnnlab"])
    root = make_image_folder(tmp_path / "photos")
    (root / "train" / "circle" / "empty.png").write_bytes(b"")
    main(
        ["fit", *on_folder(root, workers=0), "--model.arch", "simplecnn", "--trainer.max_epochs", "1", *QUIET]
    )
    record = yaml.safe_load(next(tmp_path.glob("lightning_logs/*/version_0/run.yaml")).read_text())
    assert record["skipped_images"] == {"train": 1}


def test_sixteen_bit_images_are_scaled_not_saturated(tmp_path):
    root = make_image_folder(tmp_path / "photos", n_train=2, n_test=1, classes=("a", "b"))
    ramp = (np.arange(24 * 24, dtype=np.uint32).reshape(24, 24) * 113).astype(np.uint16)  # up to ~65,000
    for path in (root / "train").rglob("*.png"):
        Image.fromarray(ramp).save(path)  # 16-bit grayscale PNGs
    dm = module(root, tmp_path / "cache", val_fraction=0.5)
    dm.setup("fit")
    image = dm.train_set[0][0]
    expected = torch.from_numpy((ramp.astype(np.float64) * 255 / 65535 + 0.5).astype(np.uint8))
    assert image.shape == (3, 24, 24) and torch.equal(image[0], expected)
    assert image.float().mean() < 200  # PIL's own conversion would clip nearly every pixel to 255


@pytest.mark.parametrize("change", ["swap_keeping_times", "link_added", "cache_replaced", "cache_pickled"])
def test_the_cache_sees_every_change(change, tmp_path):
    root = make_image_folder(tmp_path / "photos", n_train=3, n_test=2, classes=("dark", "light"))
    cache = tmp_path / "cache"
    test_dir = root / "test"
    for i, path in enumerate(sorted((test_dir / "dark").glob("*.png"))):
        Image.new("RGB", (24, 24), (10 + i, 10, 10)).save(path)
    for i, path in enumerate(sorted((test_dir / "light").glob("*.png"))):
        Image.new("RGB", (24, 24), (240 - i, 240, 240)).save(path)
    first = module(root, cache)
    first.setup("test")
    before = first.test_set.images.float().mean(dim=(1, 2, 3))
    dark, light = test_dir / "dark" / "000.png", test_dir / "light" / "000.png"
    if change == "swap_keeping_times":  # as rsync -t, cp -p or tar leave them: same sizes and mtimes
        stats = dark.stat(), light.stat()
        shutil.copyfile(dark, tmp_path / "tmp.png")
        shutil.copyfile(light, dark)
        shutil.copyfile(tmp_path / "tmp.png", light)
        os.utime(dark, ns=(stats[1].st_atime_ns, stats[1].st_mtime_ns))
        os.utime(light, ns=(stats[0].st_atime_ns, stats[0].st_mtime_ns))
    elif change == "link_added":  # a folder of new images linked into a class
        extra = tmp_path / "extra"
        extra.mkdir()
        Image.new("RGB", (24, 24), (0, 0, 0)).save(extra / "new.png")
        (test_dir / "dark" / "more").symlink_to(extra)
    else:
        (cache_file,) = cache.glob("test-*.pt")
        if change == "cache_replaced":
            torch.save({"key": "x", "images": torch.zeros(3)}, cache_file)
        else:
            import pickle

            marker = tmp_path / "ran"
            cache_file.write_bytes(pickle.dumps({"key": os.system("true") and None}))  # plain pickle
            assert not marker.exists()
    again = module(root, cache)
    again.setup("test")
    after = again.test_set.images.float().mean(dim=(1, 2, 3))
    if change == "swap_keeping_times":
        assert after[0] > 200 and before[0] < 50  # the first dark image is now the light one's pixels
    elif change == "link_added":
        assert len(after) == len(before) + 1
    else:
        assert torch.equal(after, before)  # rebuilt from the images
        assert not (tmp_path / "ran").exists()


def test_class_names_are_data_in_reports_and_csv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["cnnlab"])
    names = ("<img src=x onerror=alert(1)>", "a|b", '=HYPERLINK("x")')
    root = make_image_folder(tmp_path / "photos", classes=names)
    main(
        ["fit", *on_folder(root, workers=0), "--model.arch", "simplecnn", "--trainer.max_epochs", "1", *QUIET]
    )
    run = next(tmp_path.glob("lightning_logs/*/version_0"))
    report = (run / "report" / "test_report.md").read_text()
    assert "<img" not in report and "&lt;img src=x onerror=alert(1)&gt;" in report and "a\\|b" in report
    rows = list(csv.reader((run / "report" / "test_report.csv").open()))
    assert '\'=HYPERLINK("x")' in [row[0] for row in rows]
    matrix = next(csv.reader((run / "report" / "confusion_matrix.csv").open()))
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in matrix)


def test_a_broken_link_or_a_fifo_among_the_files_to_predict_is_named(tmp_path, capsys):
    from cnnlab.datamodules.predict import find_files

    folder = tmp_path / "mine"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "ok.png")
    (folder / "gone.png").symlink_to(tmp_path / "nowhere.png")
    os.mkfifo(folder / "pipe.png")
    assert find_files(str(folder)) == [folder / "ok.png"]
    err = capsys.readouterr().err
    assert f"cnnlab: skipping {folder / 'gone.png'}: a broken link" in err
    assert f"cnnlab: skipping {folder / 'pipe.png'}: not a regular file" in err
