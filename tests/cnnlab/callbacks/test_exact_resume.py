"""Exact resume: a run interrupted at an epoch boundary and resumed ends where the uninterrupted run ends."""

import random
import sys

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import RandomSampler

from cnnlab.callbacks.exact_resume import collect_rng_state, restore_rng_state
from cnnlab.cli import main
from cnnlab.lightning_cli import CNNLabCLI
from tests.cli_args import QUIET, on_data, recipe, run_main

pytestmark = pytest.mark.slow  # trains for real or starts processes


@pytest.fixture(autouse=True)
def _trust_the_test_callbacks(monkeypatch):
    # the tests' own callbacks, named on the command line (--trainer.callbacks+=tests.cnnlab....)
    monkeypatch.setenv("CNNLAB_TRUST", "tests.cnnlab")


LOG: dict[str, list] = {"orders": [], "lrs": []}


class Record(L.Callback):
    """Learning rate of every training step, in LOG (the batch orders are recorded by the sampler)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        LOG["lrs"].append(trainer.optimizers[0].param_groups[0]["lr"])


class StopAfter(L.Callback):
    """Stops the run at the end of epoch ``epochs``, as an interruption at an epoch boundary."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


@pytest.fixture(autouse=True)
def _record_orders(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])
    original = RandomSampler.__iter__

    def recording_iter(self):
        order = list(original(self))  # draws from the global generator at the same moment as before
        LOG["orders"].append(order)
        yield from order

    monkeypatch.setattr(RandomSampler, "__iter__", recording_iter)


def take_log() -> dict[str, list]:
    taken = {k: list(v) for k, v in LOG.items()}
    for v in LOG.values():
        v.clear()
    return taken


def assert_close(a, b, where: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert torch.allclose(a.double(), b.double(), atol=1e-6, rtol=0), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert abs(a - b) <= 1e-6, where
    else:
        assert a == b, where


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    path = tmp_path / "rng.pt"
    torch.save(collect_rng_state(), path)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng_state(torch.load(path, weights_only=True))
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2] == again[2]


WARMUP_COSINE = ["--lr_scheduler", "WarmupCosineLR", "--lr_scheduler.warmup", "0.3"]
# every random draw of training: a policy and erasing per image, mixup or CutMix per batch
POLICY_AND_MIXING = [
    *("--data.auto_augment", "randaugment", "--data.random_erasing", "0.5"),
    *("--model.mixup_alpha", "0.2", "--model.cutmix_alpha", "1.0", "--model.mix_prob", "0.8"),
]


@pytest.mark.parametrize(
    "scheduler",
    [
        ["--lr_scheduler", "OneCycleLR", "--lr_scheduler.max_lr", "0.01"],
        WARMUP_COSINE,
        WARMUP_COSINE + POLICY_AND_MIXING,
    ],
    ids=["onecycle", "warmup_cosine", "warmup_cosine_policy_mixing"],
)
def test_resume_at_an_epoch_boundary_ends_like_the_uninterrupted_run(cifar_root, in_tmp, scheduler):
    # alexnet has dropout; CIFAR-10 trains with random crops and flips, plus cutout here; shuffled batches.
    args = [
        "fit",
        *recipe("cifar10_alexnet"),
        "--model.arch_kwargs",
        "{fc_width: 16}",
        *on_data(cifar_root, batch_size=16),
        "--trainer.limit_train_batches",
        "3",
        "--trainer.limit_val_batches",
        "1",
        "--data.cutout",
        "8",
        "--optimizer",
        "SGD",
        "--optimizer.lr",
        "0.01",
        "--optimizer.momentum",
        "0.9",
        *scheduler,
        "--trainer.max_epochs",
        "4",
        "--test_after_fit",
        "false",
        "--trainer.callbacks+=tests.cnnlab.callbacks.test_exact_resume.Record",
        *QUIET,
    ]
    take_log()
    straight = CNNLabCLI(args=args)
    expected = take_log()
    CNNLabCLI(
        args=[
            *args,
            "--trainer.callbacks+=tests.cnnlab.callbacks.test_exact_resume.StopAfter",
            "--trainer.callbacks.epochs",
            "2",
        ]
    )
    first_half = take_log()
    assert len(first_half["orders"]) == 2
    resumed = CNNLabCLI(args=[*args, "--ckpt_path", "last"])
    second_half = take_log()

    assert first_half["orders"] + second_half["orders"] == expected["orders"]  # same batches, same order
    assert_close(first_half["lrs"] + second_half["lrs"], expected["lrs"], "lr curve")
    assert resumed.trainer.global_step == straight.trainer.global_step == 4 * 3
    runs = in_tmp / "lightning_logs" / "cifar10_alexnet"
    a = torch.load(runs / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(runs / "version_1" / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] and a["epoch"] == b["epoch"]
    assert_close(a["state_dict"], b["state_dict"], "weights")
    assert_close(a["optimizer_states"], b["optimizer_states"], "optimizer")
    assert_close(a["lr_schedulers"], b["lr_schedulers"], "scheduler")


@pytest.mark.parametrize(
    "scheduler",
    [
        ["--lr_scheduler", "OneCycleLR", "--lr_scheduler.max_lr", "0.01"],
        ["--lr_scheduler", "WarmupCosineLR", "--lr_scheduler.warmup", "0.1"],
    ],
    ids=["onecycle", "warmup_cosine"],
)
def test_a_resumed_per_step_schedule_refuses_to_train_longer_in_one_line(
    scheduler, mnist_root, in_tmp, capsys
):
    args = [
        "fit",
        *recipe("mnist_lenet5"),
        *on_data(mnist_root, batch_size=60, workers=0),
        *scheduler,
        *QUIET,
    ]
    main([*args, "--trainer.max_epochs", "1", "--test_after_fit", "false"])
    last = in_tmp / "lightning_logs" / "mnist_lenet5" / "version_0" / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    code, err = run_main([*args, "--trainer.max_epochs", "2", "--ckpt_path", "last"], capsys)
    assert code == 2 and err.count("\n") == 0
    assert "learning-rate schedule spans 6 steps but this run takes 12" in err and "--model.init_from" in err
    assert last.read_bytes() == before  # the checkpoint is kept as it was
