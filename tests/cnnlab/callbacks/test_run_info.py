"""Reproducibility: the same seed gives the same metrics on a CPU, and run.yaml records the run."""

import re
import sys

import pytest
import torch
import yaml

from cnnlab.lightning_cli import CNNLabCLI
from tests.cli_args import on_data, recipe


def run(mnist_root, seed: str) -> dict:
    cli = CNNLabCLI(
        args=[
            "fit",
            *recipe("mnist_lenet5"),
            *on_data(mnist_root, batch_size=32),
            "--data.translate",
            "2",
            "--seed_everything",
            seed,
            "--trainer.max_epochs",
            "2",
            "--trainer.enable_progress_bar",
            "false",
            "--test_after_fit",
            "false",  # callback_metrics then hold the last epoch's train and val metrics
        ]
    )
    return {k: float(v) for k, v in cli.trainer.callback_metrics.items() if not k.startswith("time/")}


@pytest.mark.slow
def test_same_seed_same_metrics_and_run_yaml(mnist_root, in_tmp, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab", "fit", "--config", "x.yaml"])
    first, second, other = run(mnist_root, "7"), run(mnist_root, "7"), run(mnist_root, "8")
    assert first == second  # exactly: train/val loss, accuracy, f1, ...
    assert first["val/loss"] != other["val/loss"]  # the seed matters (shuffle, augmentation, init)
    folder = in_tmp / "lightning_logs" / "mnist_lenet5" / "version_0"
    assert (folder / "config.yaml").is_file()  # the resolved config, by LightningCLI
    info = yaml.safe_load((folder / "run.yaml").read_text())
    assert info["seed"] == 7 and info["command"] == ["cnnlab", "fit", "--config", "x.yaml"]
    assert info["packages"]["torch"] == torch.__version__
    assert {"python", "torch", "torchvision", "lightning", "torchmetrics"} <= info["packages"].keys()
    assert info["device"]["accelerator"] == "cpu" and info["device"]["name"]
    assert re.fullmatch(r"[0-9a-f]{40}", info["git"]["commit"]) and isinstance(info["git"]["dirty"], bool)
    assert yaml.safe_load((folder.parent / "version_2" / "run.yaml").read_text())["seed"] == 8
