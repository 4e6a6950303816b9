"""fp32 against bf16-mixed training speed of resnet18 on the CPU, through ``cnnlab fit``.

Same data (CIFAR-10 JPEG copy, fast path), recipe (cifar10_resnet18) and number of batches on both
sides; each side runs ``--repeats`` times, alternating; images/s of the training part (EpochTimer),
first batches included. bf16 needs CPU support (AVX-512 or AMX) to pay off; on CPUs without it the
bf16 rows are left out (emulated, they train several times slower than fp32).

    python -m benchmarks.precision [--batches 30] [--repeats 3]
"""

import os
import tempfile

from benchmarks.common import EXPERIMENTS, cnnlab_fit, machine, median, parser, table
from cnnlab.callbacks import EpochTimer
from cnnlab.lightning_cli import bf16_is_emulated

BATCH = 64


def rate(data_dir: str, precision: str, batches: int, channels_last: bool) -> float:
    cli = cnnlab_fit([
        "--config", str(EXPERIMENTS / "cifar10_resnet18.yaml"), "--data", "ImageFolderDataModule",
        "--data.data_dir", data_dir, "--data.batch_size", str(BATCH), "--trainer.precision", precision,
        "--model.channels_last", str(channels_last).lower(), "--trainer.max_epochs", "1",
        "--trainer.limit_train_batches", str(batches), "--trainer.limit_val_batches", "1",
        "--test_after_fit", "false",
        "--trainer.logger", "false", "--trainer.enable_checkpointing", "false",
    ])  # fmt: skip
    (timer,) = [c for c in cli.trainer.callbacks if isinstance(c, EpochTimer)]
    return timer.images_per_second[0]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--batches", type=int, default=30)
    args = p.parse_args()
    os.chdir(tempfile.mkdtemp(prefix="cnnlab-precision-"))
    variants = [("32-true", False), ("bf16-mixed", False), ("32-true", True), ("bf16-mixed", True)]
    emulated = bf16_is_emulated("cpu")
    if emulated:
        variants = [v for v in variants if v[0] == "32-true"]
    rates = {v: [] for v in variants}
    for _ in range(args.repeats):
        for precision, channels_last in variants:
            rates[(precision, channels_last)].append(rate(args.cifar, precision, args.batches, channels_last))
    base = median(rates[variants[0]])
    print(f"resnet18 (CIFAR stem) training, batch {BATCH}, {args.batches} batches, median of {args.repeats}; "
          f"{machine()}\n")  # fmt: skip
    rows = []
    for (precision, channels_last), values in rates.items():
        layout = "channels_last" if channels_last else "NCHW"
        rows.append([precision, layout, median(values), f"{median(values) / base:.2f}"])
    print(table(["precision", "memory format", "images / s", "ratio to fp32 NCHW"], rows))
    if emulated:
        print("\nno bf16-mixed rows: this CPU has no native bf16 (AVX-512 or AMX)")


if __name__ == "__main__":
    main()
