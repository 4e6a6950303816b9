"""Lightning's DDP on CPU: two processes (gloo) train, and validation metrics cover every image once."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnlab.lightning_cli import CNNLabCLI
from tests.cli_args import QUIET, child_env, on_data, recipe, run_child
from tests.fakedata import make_mnist

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


class Moments(L.Callback):
    """Writes ``moment-<name>`` into the working folder when a run reaches a moment where a SIGTERM once
    deadlocked DDP: in the middle of training, at validation, in the checkpoint write."""

    def _mark(self, trainer, name: str) -> None:
        if trainer.is_global_zero:
            Path(f"moment-{name}").touch()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == 1 and batch_idx == 3:
            self._mark(trainer, "training")

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if trainer.current_epoch == 1 and not trainer.sanity_checking and batch_idx == 2:
            self._mark(trainer, "validation")

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        if trainer.current_epoch == 1:
            self._mark(trainer, "checkpoint")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.parametrize("moment", ["training", "validation", "checkpoint"])
def test_sigterm_to_every_ddp_process_saves_once_and_every_process_exits_143(moment, tmp_path, monkeypatch):
    data = make_mnist(tmp_path / "data", n_train=2400, n_test=100)
    ddp = ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
    args = ["fit", *recipe("mnist_lenet5"), *on_data(data, batch_size=20, workers=0), *ddp, *QUIET,
            "--trainer.max_epochs", "4", "--data.val_fraction", "0.3",
            "--trainer.callbacks+=tests.cnnlab.test_ddp.Moments"]  # fmt: skip
    load = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # the CPU loaded, as when it hung
    env = {**child_env(), "CNNLAB_TRUST": "tests.cnnlab"}
    try:
        main = subprocess.Popen([sys.executable, "-m", "cnnlab.cli", *args], cwd=tmp_path, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 240
        while not (tmp_path / f"moment-{moment}").exists() and main.poll() is None:
            assert time.monotonic() < deadline, f"the run never reached {moment}"
            time.sleep(0.05)
        ranks = [main.pid, *children(main.pid)]
        assert len(ranks) == 2, ranks
        signalled = time.monotonic()
        for pid in ranks:
            os.kill(pid, signal.SIGTERM)
        codes = []
        for pid in ranks:  # every process ends, within 60 s
            while time.monotonic() - signalled < 60:
                try:
                    done, status = os.waitpid(pid, os.WNOHANG) if pid != main.pid else (pid, main.poll())
                except ChildProcessError:  # not our child: wait for it to disappear
                    done, status = (pid, None) if not Path(f"/proc/{pid}").exists() else (0, None)
                if done and (pid != main.pid or status is not None):
                    codes.append(status)
                    break
                time.sleep(0.1)
            else:
                raise AssertionError(f"process {pid} still running 60 s after SIGTERM ({moment})")
        err = main.stderr.read()
    finally:
        load.kill()
        for pid in [main.pid, *children(main.pid)] if main.poll() is None else []:
            os.kill(pid, signal.SIGKILL)
    assert main.returncode == 143, err[-3000:]
    checkpoints = tmp_path / "lightning_logs" / "mnist_lenet5" / "version_0" / "checkpoints"
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] > 0
    assert err.count("cnnlab: interrupted at epoch") == 1 and "--ckpt_path last" in err
    assert not list(checkpoints.glob(".*.tmp"))
