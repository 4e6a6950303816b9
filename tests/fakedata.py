"""Tiny, learnable data sets written in the real on-disk formats, so the real loaders read them.

Every class draws its own bright shape on a noisy background, so a few epochs separate the classes.
"""

import pickle
import struct
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _pattern_images(labels: np.ndarray, size: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    """(N, size, size, channels) uint8: noise plus a class-specific bar (5 horizontal, 5 vertical)."""
    images = rng.integers(0, 50, size=(len(labels), size, size, channels), dtype=np.uint8)
    step = size // 6
    for i, label in enumerate(labels):
        at = step * (1 + int(label) % 5) + int(rng.integers(-1, 2))
        if int(label) < 5:
            images[i, at : at + 2, 2:-2] = 255
        else:
            images[i, 2:-2, at : at + 2] = 255
    return images


def _write_idx(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack(">I", 0x0800 + array.ndim))  # 0x08: unsigned bytes
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def make_mnist(
    root: Path, n_train: int = 400, n_test: int = 100, seed: int = 0, folder: str = "MNIST"
) -> Path:
    """``root/<folder>/raw`` with the four IDX files torchvision's MNIST reads (``folder``: the class's
    name, ``FashionMNIST`` or ``KMNIST`` for the data sets in MNIST's format)."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = _pattern_images(labels, 28, 1, rng)[..., 0]
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def make_cifar10(root: Path, per_batch: int = 40, n_test: int = 60, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py`` with five training batches, the test batch and ``batches.meta``."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        labels = rng.integers(0, 10, size=n)
        images = _pattern_images(labels, 32, 3, rng).transpose(0, 3, 1, 2).reshape(n, -1)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": images, "labels": labels.tolist(), "batch_label": name}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CIFAR_CLASSES, "num_vis": 3072}, f)
    return root


def make_cifar100(root: Path, n_train: int = 200, n_test: int = 60, seed: int = 0) -> Path:
    """``root/cifar-100-python`` with the ``train`` and ``test`` pickles (fine and coarse labels) and
    ``meta`` (both lists of names, as published). Fine class ``k`` belongs to superclass ``k % 20`` here; an
    image draws the bar of its superclass (modulo 10)."""
    from cnnlab.datamodules.cifar100 import COARSE_NAMES, FINE_NAMES

    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        fine = rng.integers(0, 100, size=n)
        coarse = fine % 20
        images = _pattern_images(coarse % 10, 32, 3, rng).transpose(0, 3, 1, 2).reshape(n, -1)
        entry = {"data": images, "fine_labels": fine.tolist(), "coarse_labels": coarse.tolist()}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": FINE_NAMES, "coarse_label_names": COARSE_NAMES}, f)
    return root


def make_svhn(root: Path, n_train: int = 200, n_test: int = 60, n_extra: int = 50, seed: int = 0) -> Path:
    """``root/SVHN/{train,test,extra}_32x32.mat`` as the data set's MATLAB files: ``X`` (32, 32, 3, N)
    uint8 and ``y`` (N, 1) with the digit 0 labelled 10."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    folder = root / "SVHN"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test), ("extra", n_extra)):
        labels = rng.integers(0, 10, size=n)
        images = _pattern_images(labels, 32, 3, rng).transpose(1, 2, 3, 0)
        savemat(folder / f"{name}_32x32.mat", {"X": images, "y": np.where(labels == 0, 10, labels)[:, None]})
    return root


STL10_CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


def make_stl10(root: Path, n_train: int = 100, n_test: int = 40, seed: int = 0) -> Path:
    """``root/stl10_binary`` with the labelled splits as the data set's binary files (images column-major,
    3x96x96, labels 1 to 10), ``class_names.txt`` and a small ``unlabeled_X.bin``, which torchvision
    wants present."""
    rng = np.random.default_rng(seed)
    folder = root / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test), ("unlabeled", 2)):
        labels = rng.integers(0, 10, size=n)
        images = _pattern_images(labels, 96, 3, rng).transpose(0, 3, 2, 1)  # N, C, W, H
        images.tofile(folder / f"{name}_X.bin")
        if name != "unlabeled":
            (labels + 1).astype(np.uint8).tofile(folder / f"{name}_y.bin")
    (folder / "class_names.txt").write_text("\n".join(STL10_CLASSES) + "\n")
    return root


def make_image_folder(
    root: Path,
    classes=("circle", "square", "triangle"),
    n_train: int = 16,
    n_test: int = 6,
    size: int = 24,
    splits=("train", "test"),
    seed: int = 0,
) -> Path:
    """``root/<split>/<class>/NNN.png`` RGB images."""
    rng = np.random.default_rng(seed)
    for split in splits:
        n = n_train if split == "train" else n_test
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            images = _pattern_images(np.full(n, label), size, 3, rng)
            for i, image in enumerate(images):
                Image.fromarray(image).save(folder / f"{i:03d}.png")
    return root


def place_resnet18_weights(torch_home: Path) -> dict:
    """Put a ResNet-18 state dict where torchvision's weights API looks (``$TORCH_HOME``), as a finished
    download would; its first convolution is filled with 0.125 so tests can recognise it."""
    weights = torchvision.models.ResNet18_Weights.DEFAULT
    state = torchvision.models.resnet18().state_dict()
    state["conv1.weight"].fill_(0.125)
    target = torch_home / "hub" / "checkpoints" / weights.url.rsplit("/", 1)[-1]
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target)
    return state
