"""Time to accuracy: whole ``cnnlab fit`` processes (imports, data loading, training, the post-fit test).

* ``mnist_speedrun`` on the MNIST copy, run ``--repeats`` times: test accuracy, training time (EpochTimer,
  validation excluded) and the whole process's wall time, against the targets (at least 99.0% test
  accuracy, at most 10 s of training, 20 s in all).
* ``cifar10_speedrun`` on the CIFAR-10 JPEG copy: on a CPU a full run takes most of an hour, so it runs
  for a fixed budget of ``--cifar-epochs`` epochs (the schedule is compressed to fit) and reports the
  accuracy reached; ``--cifar-epochs 0`` skips it.

    python -m benchmarks.time_to_accuracy [--repeats 3] [--cifar-epochs 2]
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from benchmarks.common import EXPERIMENTS, machine, median, parser, table

TARGET_ACC, TARGET_TRAIN_S, TARGET_WALL_S = 0.99, 10.0, 20.0


def one_run(recipe: Path, args: list[str], workdir: Path) -> tuple[float, float, float]:
    """(test accuracy, training seconds, wall seconds) of one ``cnnlab fit`` process."""
    command = [sys.executable, "-m", "cnnlab.cli", "fit", "--config", str(recipe), *args,
               "--trainer.enable_progress_bar", "false"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, cwd=workdir, check=True, capture_output=True)
    wall = time.perf_counter() - start
    run = max((workdir / "lightning_logs" / recipe.stem).glob("version_*"), key=os.path.getmtime)
    events = EventAccumulator(str(run))
    events.Reload()
    train_s = sum(e.value for e in events.Scalars("time/train_epoch_s"))
    return events.Scalars("test/acc")[-1].value, train_s, wall


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--cifar-epochs", type=int, default=2)
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cnnlab-tta-"))
    mnist = EXPERIMENTS / "mnist_speedrun.yaml"
    runs = [one_run(mnist, ["--data.data_dir", args.mnist], workdir) for _ in range(args.repeats)]
    acc, train_s, wall = (median(values) for values in zip(*runs, strict=True))
    each = [" ".join(f"{r[i] * scale:.2f}" for r in runs) for i, scale in ((0, 100), (1, 1), (2, 1))]
    print(f"mnist_speedrun on the MNIST copy in {args.mnist}, {args.repeats} whole processes; {machine()}\n")
    print(table(
        ["measure", "median", "each run", "target", "met"],
        [["test accuracy (%)", acc * 100, each[0], ">= 99.0", acc >= TARGET_ACC],
         ["training time (s)", train_s, each[1], "<= 10", train_s <= TARGET_TRAIN_S],
         ["whole process (s)", wall, each[2], "<= 20", wall <= TARGET_WALL_S]],
    ))  # fmt: skip
    if args.cifar_epochs:
        data = ["--data", "ImageFolderDataModule", "--data.data_dir", args.cifar]
        budget = [*data, "--data.crop_padding", "2", "--data.pad_mode", "reflect",
                  "--trainer.max_epochs", str(args.cifar_epochs)]  # fmt: skip
        acc, train_s, wall = one_run(EXPERIMENTS / "cifar10_speedrun.yaml", budget, workdir)
        print(
            f"\ncifar10_speedrun on the CIFAR-10 JPEG copy, budget {args.cifar_epochs} epochs, one process\n"
        )
        print(
            table(
                ["test accuracy (%)", "training time (s)", "whole process (s)"], [[acc * 100, train_s, wall]]
            )
        )


if __name__ == "__main__":
    main()
