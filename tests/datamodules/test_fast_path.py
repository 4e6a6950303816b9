"""The fast path serves the same images and labels as the per-image path, and caches image folders."""

import os
import time

import pytest
import torch
from PIL import Image

from cnnlab.datamodules import CIFAR10DataModule, ImageFolderDataModule, MNISTDataModule, memory
from cnnlab.datamodules.errors import DataError
from tests.fakedata import make_image_folder


def all_batches(dm, loader) -> tuple[torch.Tensor, torch.Tensor]:
    batches = [dm.on_after_batch_transfer(batch, 0) for batch in loader]
    return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])


@pytest.mark.parametrize(
    "make,root",
    [
        (lambda root, fast: MNISTDataModule(str(root), 32, 0, download=False, fast=fast), "mnist_root"),
        (lambda root, fast: CIFAR10DataModule(str(root), 32, 0, download=False, fast=fast), "cifar_root"),
        (
            lambda root, fast: ImageFolderDataModule(str(root), batch_size=32, num_workers=0, fast=fast),
            "folder_root",
        ),
    ],
    ids=["mnist", "cifar10", "image_folder"],
)
def test_fast_path_yields_the_per_image_path_images_and_labels(make, root, request):
    root = request.getfixturevalue(root)
    fast, slow = make(root, True), make(root, False)
    for dm in (fast, slow):
        dm.setup("fit")
        dm.setup("test")
    assert fast.mean == slow.mean and fast.std == slow.std
    for split in ("val_dataloader", "test_dataloader"):
        fast_x, fast_y = all_batches(fast, getattr(fast, split)())
        slow_x, slow_y = all_batches(slow, getattr(slow, split)())
        assert torch.equal(fast_y, slow_y)
        torch.testing.assert_close(fast_x, slow_x, rtol=0, atol=1e-6)


def test_image_folder_cache_is_reused_and_rebuilt_when_the_images_change(tmp_path, monkeypatch):
    root = make_image_folder(tmp_path / "photos", n_train=4, n_test=2)
    cache = tmp_path / "cache"

    def load():
        dm = ImageFolderDataModule(
            str(root), num_workers=0, cache_dir=str(cache), mean=[0.5] * 3, std=[0.5] * 3
        )
        dm.setup("test")
        return dm.test_set

    first = load()
    (cache_file,) = cache.glob("test-*.pt")

    decoded = []
    real_decode = memory.decode_all
    monkeypatch.setattr(memory, "decode_all", lambda *a: decoded.append(1) or real_decode(*a))
    monkeypatch.setattr("cnnlab.datamodules.image_folder.decode_all", memory.decode_all)
    again = load()
    assert not decoded, "an unchanged folder is read from the cache"
    assert torch.equal(again.images, first.images)

    # Rewrite one image: white instead of the pattern.
    changed = root / "test" / "circle" / "000.png"
    Image.new("RGB", (24, 24), (255, 255, 255)).save(changed)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    rebuilt = load()
    assert decoded == [1]
    index = [i for i, label in enumerate(rebuilt.labels.tolist()) if label == 0][0]
    assert rebuilt.images[index].min() == 255
    assert not list(cache.glob("*.tmp"))


def test_image_folder_falls_back_to_per_image_path_when_too_large(folder_root, monkeypatch):
    monkeypatch.setattr("cnnlab.datamodules.image_folder.MEMORY_SHARE", 1e-12)
    dm = ImageFolderDataModule(str(folder_root), num_workers=0)
    with pytest.warns(UserWarning, match="too large to hold in memory"):
        dm.setup("fit")
    assert dm.fast is False
    x, _ = next(iter(dm.train_dataloader()))
    assert x.dtype == torch.float32


def test_cache_goes_beside_writable_data_and_to_the_user_cache_for_read_only_data(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    writable = tmp_path / "mine"
    writable.mkdir()
    assert memory.default_cache_dir(writable) == writable / ".cnnlab_cache"
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o555)
    try:
        assert memory.default_cache_dir(shared).parent == tmp_path / "home-cache" / "cnnlab"
    finally:
        shared.chmod(0o755)


def test_building_the_cache_leaves_the_global_random_state_alone(tmp_path):
    root = make_image_folder(tmp_path / "photos", n_train=4, n_test=2)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    dm = ImageFolderDataModule(str(root), num_workers=2, cache_dir=str(tmp_path / "cache"))
    dm.setup("fit")
    assert torch.equal(torch.rand(3), expected)


def test_val_fraction_0_trains_on_every_image_and_skips_validation(cifar_root):
    dm = CIFAR10DataModule(str(cifar_root), 32, 0, download=False, val_fraction=0.0)
    dm.setup("fit")
    assert len(dm.train_set) == 200 and dm.val_set is None and dm.val_dataloader() == []
    with pytest.raises(DataError, match=r"val_fraction must be from 0 \(no validation\) to below 1"):
        CIFAR10DataModule(str(cifar_root), val_fraction=1.0)


def test_alternating_flip_shows_every_image_both_ways_in_two_epochs(cifar_root):
    torch.manual_seed(3)
    dm = CIFAR10DataModule(str(cifar_root), 50, 0, download=False, val_fraction=0.0, alternate_flip=True)
    dm.setup("fit")
    assert not dm.augmentation()["flip"]  # the data set's own random flip gives way
    plain = memory.InMemoryImages(dm.train_set.dataset.images, dm.train_set.dataset.labels)
    index = list(range(len(plain)))
    epoch = {"now": 0}
    dm.train_set.epoch = lambda: epoch["now"]
    seen = []
    for epoch["now"] in range(3):
        images, _ = dm.train_set.__getitems__(index)
        seen.append(images)
    originals, _ = plain.__getitems__(index)
    mirrored = torch.tensor([torch.equal(a, b.flip(2)) for a, b in zip(seen[0], originals, strict=True)])
    unchanged = torch.tensor([torch.equal(a, b) for a, b in zip(seen[0], originals, strict=True)])
    assert 0.3 < mirrored.float().mean() < 0.7 and bool((mirrored | unchanged).all())
    assert torch.equal(seen[1], seen[0].flip(3)) and torch.equal(seen[2], seen[0])
    # drawn from the run's seed: the same run (or its resumption) mirrors the same images
    torch.manual_seed(3)
    again = CIFAR10DataModule(str(cifar_root), 50, 0, download=False, val_fraction=0.0, alternate_flip=True)
    again.setup("fit")
    assert torch.equal(again.train_set.start_mirrored, dm.train_set.start_mirrored)
    with pytest.raises(DataError, match="alternate_flip needs the fast path"):
        CIFAR10DataModule(str(cifar_root), fast=False, alternate_flip=True)
