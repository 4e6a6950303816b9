"""The GPU session (issue 21) is tested where there is no GPU: its dry run runs the same code on the CPU
with tiny budgets, the install step into a fresh folder included."""

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from benchmarks import gpu_session
from benchmarks.time_to_accuracy import FitRun

ROOT = Path(__file__).resolve().parents[2]
ROW_KEYS = ["recipe", "arch", "data", "full_length", "epochs", "test_acc", "wall_s", "hardware", "load",
            "commit", "date", "command"]  # fmt: skip


@pytest.mark.slow
def test_the_dry_run_installs_trains_every_phase_and_records_rows_in_the_results_format(tmp_path):
    site, out = tmp_path / "site", tmp_path / "out"
    # --minutes 8: more than the dry run's 170 s, so that no run is cut short on a slow machine
    command = [sys.executable, "-m", "benchmarks.gpu_session", "--dry-run", "--install", str(site),
               "--wheels", str(tmp_path / "no-wheels"), "--out", str(out), "--commit", "abc1234",
               "--minutes", "8"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    # the installed package, not the checkout's cnnlab/ folder that comes first on the path
    assert f"cnnlab from {site / 'cnnlab'}" in done.stdout

    results = yaml.safe_load((out / "gpu_session.yaml").read_text())
    runs = results["runs"]
    names = [r["recipe"] for r in runs]
    assert names == ["airbench94", "airbench94", "cifar10_speedrun", "cifar10_speedrun", *gpu_session.RECIPES]
    for row in runs:
        assert all(key in row for key in ROW_KEYS), row
        assert row["full_length"] is False and row["budget"].endswith("dry run")
        assert 0 <= row["test_acc"] <= 1 and row["commit"] == "abc1234"
    recipes = {
        name: yaml.safe_load((ROOT / "experiments" / f"{name}.yaml").read_text())
        for name in gpu_session.RECIPES
    }
    epochs = {name: recipe["trainer"]["max_epochs"] for name, recipe in recipes.items()}
    assert [r["budget"] for r in runs[4:]] == [
        f"1 of {epochs[n]} epochs, dry run" for n in gpu_session.RECIPES
    ]
    assert "--trainer.max_time" in runs[4]["command"] and "--data.crop_padding 4" in runs[4]["command"]
    assert results["benchmarks"][0]["name"] == "gpu_session"
    assert "time ratio" in results["benchmarks"][0]["figure"]
    assert "| cifar10_mobilenetv2" in done.stdout  # the closing table

    # every recorded cnnlab command parses, as tests/test_docs.py parses those of docs/results.md
    from cnnlab.lightning_cli import CNNLabCLI

    for row in runs:
        if row["command"].startswith("cnnlab fit "):
            CNNLabCLI(args=shlex.split(row["command"])[1:], instantiate=False)


def test_a_run_cut_by_its_time_limit_counts_only_its_full_epochs():
    def run(images):
        return FitRun(0.5, 1.0, 2.0, [0.5] * len(images), images, Path("."), "")

    assert run([45000, 45000, 45000]).full_epochs() == 3
    assert run([45000, 45000, 12800]).full_epochs() == 2


def test_max_time_is_written_as_lightning_reads_it():
    assert gpu_session.max_time(59.9) == "00:00:00:59"
    assert gpu_session.max_time(3725) == "00:01:02:05"


def test_recorded_commands_name_the_shared_copy_not_the_session_folder():
    args = ["--data.data_dir", "/tmp/s/cifar10-jpeg", "--trainer.max_epochs", "1"]
    assert gpu_session.shown(args, "/tmp/s/cifar10-jpeg") == (
        "--data.data_dir ../shared/data/cifar10-jpeg --trainer.max_epochs 1"
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a GPU")
def test_without_a_gpu_the_session_points_to_the_dry_run(tmp_path):
    with pytest.raises(SystemExit, match="--dry-run"):
        gpu_session.main(["--out", str(tmp_path)])
