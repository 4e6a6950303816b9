"""Framework overhead: time per training epoch of a plain PyTorch loop against ``cnnlab fit``.

Both sides train the same model (simplecnn), on the same data (CIFAR-10 from the shared JPEG copy, held
in memory, flip + crop augmentation on whole batches), with the same recipe (Adam 1e-3 in its fused form,
batch 64, channels-last tensors: cnnlab's defaults). Validation time is excluded on both sides. Epochs
alternate between the two sides; the first epoch of each side is a warm-up and not counted.

    python -m benchmarks.overhead [--epochs 3] [--repeats 2]
"""

import os
import tempfile
import time

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from benchmarks.common import EXPERIMENTS, cnnlab_fit, machine, median, parser, table
from cnnlab.callbacks import EpochTimer
from cnnlab.datamodules import ImageFolderDataModule
from cnnlab.datamodules.augment import augment_batch
from cnnlab.datamodules.memory import keep_batch
from cnnlab.models import get_model

BATCH = 64


def plain_loop(dm: ImageFolderDataModule, epochs: int) -> list[float]:
    """The loop a PyTorch user would write over the same in-memory data."""
    L.seed_everything(0)
    model = get_model("simplecnn", num_classes=10, in_channels=3, image_size=32)
    model = model.to(memory_format=torch.channels_last)  # as cnnlab's default
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)  # as cnnlab's default
    loader = DataLoader(dm.train_set, batch_size=BATCH, shuffle=True, collate_fn=keep_batch)
    seconds = []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        for images, labels in loader:
            images = dm.normalize(augment_batch(images, **dm.augmentation()))
            images = images.contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return seconds


def cnnlab_run(data_dir: str, epochs: int) -> list[float]:
    """``cnnlab fit`` as a user runs it (logger, checkpoints, progress bar), without the post-fit test."""
    cli = cnnlab_fit([
        "--config", str(EXPERIMENTS / "cifar10_simplecnn.yaml"), "--data", "ImageFolderDataModule",
        "--data.data_dir", data_dir, "--data.crop_padding", "4", "--data.batch_size", str(BATCH),
        "--trainer.max_epochs", str(epochs), "--test_after_fit", "false",
    ])  # fmt: skip
    (timer,) = [c for c in cli.trainer.callbacks if isinstance(c, EpochTimer)]
    return timer.epoch_seconds


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args()
    os.chdir(tempfile.mkdtemp(prefix="cnnlab-overhead-"))  # the runs' lightning_logs/ go there
    dm = ImageFolderDataModule(args.cifar, crop_padding=4, batch_size=BATCH)
    dm.setup("fit")  # decodes once (or memory-maps the cache), as cnnlab fit does
    plain, framework = [], []
    for _ in range(args.repeats):
        plain += plain_loop(dm, args.epochs)[1:]
        framework += cnnlab_run(args.cifar, args.epochs)[1:]
    p_med, f_med = median(plain), median(framework)
    images = len(dm.train_set)
    print(f"simplecnn, CIFAR-10 JPEG copy in memory, {images:,} training images, batch {BATCH}; {machine()}")
    print(f"median of {len(plain)} epochs per side (first epoch of each run not counted)\n")
    each = [" ".join(f"{s:.1f}" for s in side) for side in (plain, framework)]
    print(table(
        ["side", "s / epoch (median)", "images / s", "epochs (s)", "ratio to plain"],
        [["plain PyTorch loop", p_med, images / p_med, each[0], "1.000"],
         ["cnnlab fit", f_med, images / f_med, each[1], f"{f_med / p_med:.3f}"]],
    ))  # fmt: skip


if __name__ == "__main__":
    main()
