"""Interrupted-and-resumed vs uninterrupted: does a resumed run end exactly where a straight run ends?

Runs a recipe for ``--epochs`` epochs straight, then the same recipe stopped after ``--stop`` epochs (at
an epoch boundary) and resumed with ``--ckpt_path last`` to ``--epochs``; compares the two last.ckpt
files: largest weight difference, optimizer state, learning rate, global_step, and the final val/acc.

    python -m benchmarks.resume_parity --config experiments/mnist_lenet5.yaml \
        --data.data_dir /work/shared/data --epochs 2 --stop 1
"""

import argparse
import sys
import tempfile
from pathlib import Path

import lightning as L
import torch

from cnnlab.lightning_cli import CNNLabCLI


class StopAfter(L.Callback):
    """Ends the run at the end of epoch ``epochs``, as an interruption at an epoch boundary would."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


def max_abs_diff(a, b) -> float:
    if isinstance(a, torch.Tensor):
        return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0
    if isinstance(a, dict):
        return max((max_abs_diff(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, (list, tuple)):
        return max((max_abs_diff(x, y) for x, y in zip(a, b, strict=True)), default=0.0)
    if isinstance(a, (int, float)) and not isinstance(a, bool):
        return abs(a - b)
    return 0.0 if a == b else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--stop", type=int, default=1)
    known, rest = parser.parse_known_args()
    out = Path(tempfile.mkdtemp(prefix="resume_parity_"))
    args = [
        "fit",
        *rest,
        "--trainer.max_epochs",
        str(known.epochs),
        "--trainer.enable_progress_bar",
        "false",
        "--test_after_fit",
        "false",
        "--trainer.logger.init_args.save_dir",
        str(out),
    ]
    sys.argv = ["cnnlab"]
    straight = CNNLabCLI(args=args)
    stopper = ["--trainer.callbacks+=benchmarks.resume_parity.StopAfter", "--trainer.callbacks.epochs"]
    stopper.append(str(known.stop))
    CNNLabCLI(args=[*args, *stopper])
    resumed = CNNLabCLI(args=[*args, "--ckpt_path", "last"])
    runs = sorted(p for p in out.glob("*/version_*"))
    a, b = (torch.load(r / "checkpoints" / "last.ckpt", weights_only=True) for r in runs)
    lr = [c.trainer.optimizers[0].param_groups[0]["lr"] for c in (straight, resumed)]
    acc = [float(c.trainer.callback_metrics["val/acc"]) for c in (straight, resumed)]
    print(f"runs in {out}")
    print(f"straight {known.epochs} epochs vs {known.stop} + resume to {known.epochs}:")
    print(f"  global_step           {a['global_step']} vs {b['global_step']}")
    print(f"  epoch                 {a['epoch']} vs {b['epoch']}")
    print(f"  lr                    {lr[0]:.8g} vs {lr[1]:.8g}")
    print(f"  final val/acc         {acc[0]:.4f} vs {acc[1]:.4f}")
    print(f"  max |weight diff|     {max_abs_diff(a['state_dict'], b['state_dict']):.3g}")
    print(f"  max |optimizer diff|  {max_abs_diff(a['optimizer_states'], b['optimizer_states']):.3g}")
    print(f"  max |scheduler diff|  {max_abs_diff(a['lr_schedulers'], b['lr_schedulers']):.3g}")


if __name__ == "__main__":
    main()
