"""Crash safety: a run stopped by SIGTERM or Ctrl-C writes last.ckpt, says how to resume, and resumes."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from cnnlab.callbacks.safety import resume_command
from cnnlab.cli import main
from cnnlab.lightning_cli import CNNLabCLI
from tests.cli_args import child_env, on_data, recipe, run_child

pytestmark = pytest.mark.slow  # trains for real or starts processes


@pytest.fixture(autouse=True)
def _trust_the_test_callbacks(monkeypatch):
    # the tests' own callbacks, named on the command line (--trainer.callbacks+=tests.cnnlab....)
    monkeypatch.setenv("CNNLAB_TRUST", "tests.cnnlab")


def cnnlab_process(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cnnlab.cli", *args],
        cwd=cwd,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background job ignores Ctrl-C, and children inherit that: give it back
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def fit_args(mnist_root, epochs: int) -> list[str]:
    trainer = ["--trainer.max_epochs", str(epochs), "--trainer.enable_progress_bar", "false"]
    return ["fit", *recipe("mnist_lenet5"), *on_data(mnist_root, batch_size=4), *trainer]


def test_resume_command_replaces_any_ckpt_path():
    assert resume_command(["fit", "--config", "a b.yaml", "--ckpt_path", "x.ckpt"]) == (
        "cnnlab fit --config 'a b.yaml' --ckpt_path last"
    )
    assert resume_command(["fit", "--ckpt_path=x"]) == "cnnlab fit --ckpt_path last"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl_c"])
def test_a_signal_during_fit_saves_last_ckpt_and_the_run_resumes_from_it(signum, mnist_root, tmp_path):
    run = tmp_path / "lightning_logs" / "mnist_lenet5" / "version_0" / "checkpoints"
    proc = cnnlab_process(fit_args(mnist_root, 100), tmp_path)
    deadline = time.time() + 120
    while not (run / "last.ckpt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert (run / "last.ckpt").exists(), proc.communicate()[1]
    first_epoch = torch.load(run / "last.ckpt", weights_only=True)["global_step"]
    time.sleep(1.0)  # well into the second epoch (90 steps of 4 images)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    lines = [line for line in err.splitlines() if line.startswith("cnnlab: interrupted")]
    assert len(lines) == 1, err
    ckpt = torch.load(run / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] > first_epoch  # the steps after the last epoch's checkpoint are kept
    assert f"step {ckpt['global_step']}; checkpoint saved to " in lines[0]
    assert "last.ckpt; resume with: cnnlab fit --config " in lines[0]
    assert lines[0].endswith("--ckpt_path last")
    assert not list(run.glob("*.tmp"))
    if signum != signal.SIGTERM:
        return
    args = [*fit_args(mnist_root, ckpt["epoch"] + 1), "--ckpt_path", "last"]
    resumed = run_child(args, tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    final = torch.load(run / "last.ckpt", weights_only=True)
    assert final["epoch"] == ckpt["epoch"] and final["global_step"] == (ckpt["epoch"] + 1) * first_epoch


class Poison(L.Callback):
    """Sets the first weight to NaN before step ``step``: the loss of that step is NaN."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))


PARAMS: dict[str, list[torch.Tensor]] = {}


class Snapshot(L.Callback):
    """The parameters when training starts and ends, in PARAMS."""

    def on_train_start(self, trainer, pl_module) -> None:
        PARAMS["start"] = [p.detach().clone() for p in pl_module.parameters()]

    def on_train_end(self, trainer, pl_module) -> None:
        PARAMS["end"] = [p.detach().clone() for p in pl_module.parameters()]


def in_process_args(mnist_root) -> list[str]:
    return [
        *fit_args(mnist_root, 3),
        "--data.batch_size",
        "60",
        "--data.num_workers",
        "0",
        "--trainer.enable_model_summary",
        "false",
    ]


def test_a_nan_loss_stops_training_with_one_line_and_keeps_the_last_good_checkpoint(
    mnist_root, in_tmp, capsys, monkeypatch
):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])
    with pytest.raises(SystemExit) as done:
        main(
            [
                *in_process_args(mnist_root),
                "--trainer.callbacks+=tests.cnnlab.callbacks.test_safety.Poison",
                "--trainer.callbacks.step",
                "8",
            ]
        )
    err = capsys.readouterr().err.strip()
    assert done.value.code != 0 and "Traceback" not in err
    run = Path("lightning_logs") / "mnist_lenet5" / "version_0" / "checkpoints"
    assert err.splitlines() == [
        f"cnnlab: error: loss became nan at step 8 (epoch 1); last good checkpoint: {run / 'last.ckpt'}; "
        "lower the learning rate or set --trainer.gradient_clip_val"
    ]
    for ckpt in run.glob("*.ckpt"):  # 6 steps per epoch: only epoch 0's checkpoints, all finite
        saved = torch.load(ckpt, weights_only=True)
        assert saved["global_step"] == 6
        assert all(torch.isfinite(v).all() for v in saved["state_dict"].values() if v.is_floating_point())


@pytest.mark.parametrize("clip", [None, "0.001"], ids=["no_clip", "clip"])
def test_gradient_clipping_from_the_config_with_mixed_precision(clip, mnist_root, in_tmp, monkeypatch):
    # On a CPU Lightning runs precision 16-mixed as bf16-mixed (fp16 AMP needs a GPU).
    monkeypatch.setattr(sys, "argv", ["cnnlab"])
    clipping = ["--trainer.gradient_clip_val", clip] if clip else []
    cli = CNNLabCLI(
        args=[
            *in_process_args(mnist_root),
            "--optimizer",
            "SGD",
            "--optimizer.lr",
            "1.0",
            "--trainer.precision",
            "16-mixed",
            *clipping,
            "--trainer.fast_dev_run",
            "1",
            "--trainer.callbacks+=tests.cnnlab.callbacks.test_safety.Snapshot",
        ]
    )
    assert cli.trainer.precision == "bf16-mixed" and cli.trainer.global_step == 1
    change = torch.cat([(b - a).flatten() for a, b in zip(PARAMS["start"], PARAMS["end"], strict=True)])
    if clip:  # one SGD step of lr 1 moves the weights by the clipped gradient: norm <= 0.001
        assert change.norm() <= 0.001 * 1.01
    else:
        assert change.norm() > 0.01


def test_an_exploding_but_finite_loss_stops_in_one_line(mnist_root, in_tmp, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])
    with pytest.raises(SystemExit) as done:
        main([*in_process_args(mnist_root), "--optimizer", "SGD", "--optimizer.lr", "1e30"])
    err = capsys.readouterr().err.strip().splitlines()
    assert done.value.code == 2 and len(err) == 1
    assert "(above explode_at 10000: training diverged)" in err[0] and "last good checkpoint" in err[0]
