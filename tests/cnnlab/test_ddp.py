"""Lightning's DDP on CPU: two processes (gloo) train, and validation metrics cover every image once."""

import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnlab.cli import CNNLabCLI

ROOT = Path(__file__).resolve().parents[2]


def logged(run: Path, tag: str) -> float:
    events = EventAccumulator(str(run))
    events.Reload()
    return events.Scalars(tag)[-1].value


def test_ddp_on_two_cpu_processes_logs_the_whole_validation_sets_metrics(mnist_root, tmp_path, monkeypatch):
    data = ["--data.data_dir", str(mnist_root), "--data.download", "false", "--data.batch_size", "20"]
    common = ["--config", str(ROOT / "experiments" / "mnist_lenet5.yaml"), *data]
    ddp = ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
    quiet = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    fit = subprocess.run(
        [sys.executable, "-m", "cnnlab.cli", "fit", *common, *ddp, *quiet, "--trainer.max_epochs", "1"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
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
        args=["validate", *common, *quiet, "--ckpt_path", str(run / "checkpoints" / "last.ckpt")]
    )
    whole = {k: float(v) for k, v in single.trainer.callback_metrics.items()}
    assert abs(logged(run, "val/acc") - whole["val/acc"]) < 1e-6
    assert abs(logged(run, "val/loss") - whole["val/loss"]) < 1e-5
