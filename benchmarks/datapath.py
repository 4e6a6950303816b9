"""Data path: the source articles' pipeline against cnnlab's fast path, on the shared CIFAR-10 JPEG copy.

Source pipeline: ``torchvision.datasets.ImageFolder`` + ``RandomHorizontalFlip``/``ToTensor``/``Normalize``
through a ``DataLoader`` (batch 64, shuffled; the articles use no worker processes, the table also
shows 2 workers). Fast path: ``ImageFolderDataModule`` (decoded once, cached, memory-mapped), batches
augmented (flip) and normalised in ``on_after_batch_transfer``.

Measured side by side, alternating, ``--repeats`` times each; medians reported:
  * loading alone: images/s of iterating the training batches (nothing else done with them);
  * training simplecnn end to end (Adam 1e-3, batch 64): a plain loop over the source pipeline against
    ``cnnlab fit`` over the fast path (training part of the epoch, from cnnlab's EpochTimer): the
    recipe as written (fp32, cnnlab's default fused Adam); the fast path alone (with the source loop's
    unfused Adam); and the recipe with cnnlab's speed switches (bf16-mixed autocast, channels-last).

    python -m benchmarks.datapath [--batches 300] [--repeats 3]
"""

import os
import tempfile
import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from benchmarks.common import EXPERIMENTS, cnnlab_fit, machine, median, parser, table
from cnnlab.callbacks import EpochTimer
from datamodules import ImageFolderDataModule
from models import get_model

BATCH = 64
SPEED_SWITCHES = ("--trainer.precision", "bf16-mixed", "--model.channels_last", "true")
# The source loop's Adam implementation, to show what the data path alone gives.
AS_SOURCE = ("--optimizer.init_args.foreach", "true")


def source_loader(root: str, workers: int) -> DataLoader:
    transform = transforms.Compose(
        [
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize((0.5,) * 3, (0.5,) * 3),
        ]
    )
    dataset = datasets.ImageFolder(os.path.join(root, "train"), transform=transform)
    return DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers)


def fast_module(root: str) -> ImageFolderDataModule:
    dm = ImageFolderDataModule(root, batch_size=BATCH, crop_padding=4)
    dm.setup("fit")
    dm.trainer = SimpleNamespace(training=True)  # augment as in training
    return dm


def loading_rate(batches, limit: int, after=lambda b: b) -> float:
    """Images per second of pulling ``limit`` batches (the first one, with worker start-up, not counted)."""
    it = iter(batches)
    after(next(it))
    start, images = time.perf_counter(), 0
    for _, batch in zip(range(limit), it, strict=False):
        images += len(after(batch)[1])
    return images / (time.perf_counter() - start)


def source_training_rate(root: str, limit: int) -> float:
    torch.manual_seed(0)
    model = get_model("simplecnn", num_classes=10, in_channels=3, image_size=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(batch):
        images, labels = batch
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return batch

    return loading_rate(source_loader(root, 0), limit, step)


def cnnlab_training_rate(root: str, limit: int, *speed: str) -> float:
    cli = cnnlab_fit([*speed,
        "--config", str(EXPERIMENTS / "cifar10_simplecnn.yaml"), "--data", "ImageFolderDataModule",
        "--data.data_dir", root, "--data.batch_size", str(BATCH), "--data.crop_padding", "4",
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", str(limit),
        "--trainer.limit_val_batches", "2", "--test_after_fit", "false",
    ])  # fmt: skip
    (timer,) = [c for c in cli.trainer.callbacks if isinstance(c, EpochTimer)]
    return timer.images_per_second[0]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--batches", type=int, default=300, help="batches per measurement")
    args = p.parse_args()
    os.chdir(tempfile.mkdtemp(prefix="cnnlab-datapath-"))
    dm = fast_module(args.cifar)  # builds or memory-maps the cache before anything is timed
    keys = ("src0", "src2", "fast", "train_src", "train_fast", "train_fast_as_source", "train_fast_bf16")
    rates = {k: [] for k in keys}
    for _ in range(args.repeats):
        rates["src0"].append(loading_rate(source_loader(args.cifar, 0), args.batches))
        rates["src2"].append(loading_rate(source_loader(args.cifar, 2), args.batches))
        rates["fast"].append(
            loading_rate(dm.train_dataloader(), args.batches, lambda b: dm.on_after_batch_transfer(b, 0))
        )
        rates["train_src"].append(source_training_rate(args.cifar, args.batches))
        rates["train_fast"].append(cnnlab_training_rate(args.cifar, args.batches))
        rates["train_fast_as_source"].append(cnnlab_training_rate(args.cifar, args.batches, *AS_SOURCE))
        rates["train_fast_bf16"].append(cnnlab_training_rate(args.cifar, args.batches, *SPEED_SWITCHES))
    m = {k: median(v) for k, v in rates.items()}
    print(f"CIFAR-10 JPEG copy, batch {BATCH}, {args.batches} batches per measurement, "
          f"median of {args.repeats}; {machine()}\n")  # fmt: skip
    rows = [
        ["loading alone", "source: ImageFolder + transforms, 0 workers", "src0", "src0"],
        ["loading alone", "source: ImageFolder + transforms, 2 workers", "src2", "src0"],
        ["loading alone", "cnnlab fast path (cached; crop + flip per batch)", "fast", "src0"],
        ["training simplecnn", "plain loop over the source pipeline (0 workers)", "train_src", "train_src"],
        ["training simplecnn", "cnnlab fit, the recipe (fp32, fused Adam)", "train_fast", "train_src"],
        [
            "training simplecnn",
            "cnnlab fit, fast path only (unfused Adam)",
            "train_fast_as_source",
            "train_src",
        ],
        ["training simplecnn", "cnnlab fit, bf16-mixed + channels_last", "train_fast_bf16", "train_src"],
    ]
    print(table(
        ["what", "pipeline", "images / s", "ratio to source"],
        [[what, how, m[key], f"{m[key] / m[base]:.2f}"] for what, how, key, base in rows],
    ))  # fmt: skip


if __name__ == "__main__":
    main()
