"""Checkpoint files: every one cnnlab writes loads with weights_only=True, pickled code is refused without
running, and a failed write leaves the previous checkpoint whole."""

import os
import pathlib
import sys
from pathlib import Path

import pytest
import torch

from cnnlab.checkpoint_io import AtomicCheckpointIO
from cnnlab.lightning_cli import CNNLabCLI
from tests.cli_args import QUIET, on_data, recipe, run_main


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])


def mnist_args(mnist_root) -> list[str]:
    return [*recipe("mnist_lenet5"), *on_data(mnist_root, workers=0), *QUIET]


class Payload:
    """Unpickling this creates ``path``: the stand-in for code hidden in a checkpoint."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def test_every_checkpoint_of_a_run_loads_with_weights_only(mnist_root, in_tmp):
    CNNLabCLI(args=["fit", *mnist_args(mnist_root), "--trainer.max_epochs", "2", "--test_after_fit", "false"])
    files = sorted((in_tmp / "lightning_logs" / "mnist_lenet5" / "version_0" / "checkpoints").glob("*.ckpt"))
    assert {f.name for f in files} >= {"last.ckpt"} and len(files) >= 2  # best by val/acc and last
    for f in files:
        ckpt = torch.load(f, weights_only=True)
        assert "ExactResume" in ckpt["callbacks"] and ckpt["optimizer_states"]
    assert torch.load(files[-1], weights_only=True)["epoch"] == 1  # last.ckpt is the last epoch's


@pytest.mark.parametrize("subcommand", ["test", "fit"])
def test_a_checkpoint_with_pickled_code_is_refused_without_running_it(subcommand, mnist_root, in_tmp, capsys):
    marker = in_tmp / "payload_ran"
    evil = in_tmp / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"arch": "lenet5"}, "extra": Payload(marker)}, evil)
    code, err = run_main([subcommand, *mnist_args(mnist_root), "--ckpt_path", str(evil)], capsys)
    assert not marker.exists()
    assert code != 0 and "Traceback" not in err
    assert err.splitlines() == [err.splitlines()[0]] and err.startswith("cnnlab: error: refusing to load")
    assert str(evil) in err


def test_a_failed_write_keeps_the_previous_checkpoint_and_leaves_no_partial_file(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 1}, target)
    real_save = torch.save

    def save_then_fail(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", save_then_fail)
    with pytest.raises(OSError):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "global_step": 2}, target)
    monkeypatch.setattr(torch, "save", real_save)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    kept = torch.load(target, weights_only=True)
    assert kept["global_step"] == 1 and torch.equal(kept["state_dict"]["w"], torch.ones(3))


def test_runs_write_checkpoints_through_the_atomic_writer(mnist_root, in_tmp):
    cli = CNNLabCLI(args=["fit", *mnist_args(mnist_root), "--trainer.fast_dev_run", "1"])
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)


def test_a_resumed_run_removes_the_temporary_files_of_interrupted_writes(mnist_root, in_tmp, capsys):
    args = ["fit", *mnist_args(mnist_root), "--test_after_fit", "false"]
    CNNLabCLI(args=[*args, "--trainer.max_epochs", "1"])
    folder = in_tmp / "lightning_logs" / "mnist_lenet5" / "version_0" / "checkpoints"
    dead = folder / ".last.ckpt.4194000.0123abcd.tmp"  # a writer that was killed (no such process)
    alive = folder / f".last.ckpt.{os.getpid()}.89abcdef.tmp"  # one still writing: left alone
    for path in (dead, alive):
        path.write_bytes(b"PK\x03\x04 half a checkpoint")
    capsys.readouterr()
    CNNLabCLI(args=[*args, "--trainer.max_epochs", "2", "--ckpt_path", "last"])
    assert not dead.exists() and alive.exists()
    assert f"cnnlab: removed {dead.relative_to(in_tmp)}, left by an interrupted" in capsys.readouterr().err
