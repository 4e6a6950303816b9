"""Data path: the source articles' pipeline against cnnlab's fast path, on the shared CIFAR-10 JPEG copy.

Source pipeline: ``torchvision.datasets.ImageFolder`` + ``RandomHorizontalFlip``/``ToTensor``/``Normalize``
through a ``DataLoader`` (batch 64, shuffled; the articles use no worker processes, the table also
shows 2 workers). Fast path: ``ImageFolderDataModule`` (decoded once, cached, memory-mapped), batches
augmented (flip) and normalised in ``on_after_batch_transfer``.

Measured side by side, alternating, ``--repeats`` times each; medians reported:
  * loading alone: images/s of iterating the training batches (nothing else done with them);
  * training simplecnn end to end (Adam 1e-3, batch 64): a plain loop over the source pipeline against
    ``cnnlab fit`` over the fast path (training part of the epoch, from cnnlab's EpochTimer): the
    recipe as written (fp32, cnnlab's defaults: fused Adam, channels-last); the fast path alone (the
    source loop's unfused Adam and NCHW tensors); the recipe in bf16-mixed (only on CPUs with native
    bf16, where it pays off). Beside them, the ceiling: a plain loop over the fast path's batches doing
    what the recipe does (fused Adam, channels-last), so the table shows how much of it cnnlab keeps.

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
from cnnlab.datamodules import ImageFolderDataModule
from cnnlab.lightning_cli import bf16_is_emulated
from cnnlab.models import get_model

BATCH = 64
BF16 = ("--trainer.precision", "bf16-mixed")
# The source loop's Adam implementation and memory format, to show what the data path alone gives.
AS_SOURCE = ("--optimizer.init_args.foreach", "true", "--model.channels_last", "false")


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


def plain_training_rate(batches, limit: int, fast_kernels: bool, prepare=lambda b: b) -> float:
    """A plain PyTorch loop training simplecnn on ``batches``, each passed through ``prepare`` first.
    ``fast_kernels``: fused Adam and channels-last tensors, as cnnlab's defaults; else PyTorch's own."""
    torch.manual_seed(0)
    model = get_model("simplecnn", num_classes=10, in_channels=3, image_size=32)
    layout = torch.channels_last if fast_kernels else torch.contiguous_format
    model = model.to(memory_format=layout)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fast_kernels or None)

    def step(batch):
        images, labels = prepare(batch)
        loss = F.cross_entropy(model(images.contiguous(memory_format=layout)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return batch

    return loading_rate(batches, limit, step)


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

    def augmented(batch):  # what cnnlab does to each batch on the device
        return dm.on_after_batch_transfer(batch, 0)

    bf16 = not bf16_is_emulated("cpu")
    keys = ["src0", "src2", "fast", "train_src", "train_plain", "train_fast", "train_fast_as_source"]
    if bf16:
        keys.append("train_fast_bf16")
    rates = {k: [] for k in keys}
    for _ in range(args.repeats):
        rates["src0"].append(loading_rate(source_loader(args.cifar, 0), args.batches))
        rates["src2"].append(loading_rate(source_loader(args.cifar, 2), args.batches))
        rates["fast"].append(loading_rate(dm.train_dataloader(), args.batches, augmented))
        rates["train_src"].append(plain_training_rate(source_loader(args.cifar, 0), args.batches, False))
        rates["train_plain"].append(plain_training_rate(dm.train_dataloader(), args.batches, True, augmented))
        rates["train_fast"].append(cnnlab_training_rate(args.cifar, args.batches))
        rates["train_fast_as_source"].append(cnnlab_training_rate(args.cifar, args.batches, *AS_SOURCE))
        if bf16:
            rates["train_fast_bf16"].append(cnnlab_training_rate(args.cifar, args.batches, *BF16))
    m = {k: median(v) for k, v in rates.items()}
    print(f"CIFAR-10 JPEG copy, batch {BATCH}, {args.batches} batches per measurement, "
          f"median of {args.repeats}; {machine()}\n")  # fmt: skip
    load, train = "loading alone", "training simplecnn"
    rows = [  # (what, pipeline, key); ratios to the source pipeline's row of the same kind
        (load, "source: ImageFolder + transforms, 0 workers", "src0"),
        (load, "source: ImageFolder + transforms, 2 workers", "src2"),
        (load, "cnnlab fast path (cached; crop + flip per batch)", "fast"),
        (train, "plain loop over the source pipeline (0 workers)", "train_src"),
        (train, "plain loop over the fast path (fused Adam, NHWC)", "train_plain"),
        (train, "cnnlab fit, the recipe (fp32, fused Adam, NHWC)", "train_fast"),
        (train, "cnnlab fit, fast path only (unfused Adam, NCHW)", "train_fast_as_source"),
        (train, "cnnlab fit, the recipe in bf16-mixed", "train_fast_bf16"),
    ]
    base = {load: m["src0"], train: m["train_src"]}
    print(table(
        ["what", "pipeline", "images / s", "ratio to source"],
        [[what, how, m[key], f"{m[key] / base[what]:.2f}"] for what, how, key in rows if key in m],
    ))  # fmt: skip
    print(f"\ncnnlab fit keeps {m['train_fast'] / m['train_plain']:.0%} of the plain loop's images/s")
    if not bf16:
        print("no bf16-mixed row: this CPU has no native bf16 (AVX-512 or AMX); it would train several times "
              "slower than fp32")  # fmt: skip


if __name__ == "__main__":
    main()
