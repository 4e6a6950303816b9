"""Lightning's DDP on CPU: two processes (gloo) train, and validation metrics cover every image once."""

import sys
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnlab.lightning_cli import CNNLabCLI
from tests.cli_args import QUIET, on_data, recipe, run_child

pytestmark = pytest.mark.slow  # trains for real or starts processes


def logged(run: Path, tag: str) -> float:
    events = EventAccumulator(str(run))
    events.Reload()
    return events.Scalars(tag)[-1].value


def test_ddp_on_two_cpu_processes_logs_the_whole_validation_sets_metrics(mnist_root, tmp_path, monkeypatch):
    common = [*recipe("mnist_lenet5"), *on_data(mnist_root, batch_size=20)]
    ddp = ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
    fit = run_child(["fit", *common, *ddp, *QUIET, "--trainer.max_epochs", "1"], tmp_path, timeout=600)
    assert fit.returncode == 0, fit.stderr[-3000:]
    run = tmp_path / "lightning_logs" / "mnist_lenet5" / "version_0"
    assert yaml.safe_load((run / "run.yaml").read_text())["device"]["devices"] == 2
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    # 360 training images, 20 per process and step, two processes: 9 steps per epoch (18 on one process)
    assert ckpt["global_step"] == 9

    # The same weights validated by one process: the DDP run's logged numbers must be the whole set's.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["cnnlab"])
    single = CNNLabCLI(
        args=["validate", *common, *QUIET, "--ckpt_path", str(run / "checkpoints" / "last.ckpt")]
    )
    whole = {k: float(v) for k, v in single.trainer.callback_metrics.items()}
    assert abs(logged(run, "val/acc") - whole["val/acc"]) < 1e-6
    assert abs(logged(run, "val/loss") - whole["val/loss"]) < 1e-5
