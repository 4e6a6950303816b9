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


def make_mnist(root: Path, n_train: int = 400, n_test: int = 100, seed: int = 0) -> Path:
    """``root/MNIST/raw`` with the four IDX files torchvision's MNIST reads."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
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
