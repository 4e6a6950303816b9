"""A plain (not editable) install behaves as the checkout does, from any folder, and claims no generic
top-level names: the user's own ``models/`` beside the command is neither shadowed nor imported."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.fakedata import make_mnist

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """cnnlab installed with ``pip install --no-deps --target``: what ``pip install .`` puts in
    site-packages (its dependencies are this environment's)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return target


def cnnlab(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    return subprocess.run(
        [sys.executable, "-m", "cnnlab.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_install_holds_only_cnnlab_at_the_top_level(installed):
    top = {p.name for p in installed.iterdir() if not p.name.endswith(".dist-info") and p.name != "bin"}
    assert top == {"cnnlab"}
    assert (installed / "cnnlab/experiments/defaults.yaml").is_file()
    assert (installed / "cnnlab/experiments/mnist_lenet5.yaml").is_file()
    assert (installed / "cnnlab/experiments/sweeps/mnist_zoo.yaml").is_file()


def test_an_installed_cnnlab_finds_its_sweeps_by_name(installed, tmp_path):
    done = cnnlab(installed, tmp_path, "sweep", "--help")
    assert done.returncode == 0 and "mnist_zoo" in done.stdout and "cifar10_lr_wd" in done.stdout
    from_elsewhere = "from cnnlab.sweep_file import load; print(load('mnist_zoo').path)"
    env = {**os.environ, "PYTHONPATH": str(installed)}
    where = subprocess.run([sys.executable, "-c", from_elsewhere], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert where.stdout.strip() == str(installed / "cnnlab" / "experiments" / "sweeps" / "mnist_zoo.yaml")


def test_an_installed_cnnlab_trains_and_resumes_by_recipe_name_from_any_folder(installed, tmp_path):
    data = make_mnist(tmp_path / "data", n_train=300, n_test=60)
    work = tmp_path / "work"
    # the user's own packages named like the repository's folders, which must not be imported
    for name in ("models", "datamodules"):
        (work / name).mkdir(parents=True)
        (work / name / "__init__.py").write_text(
            f"raise RuntimeError('the user\\'s own {name} was imported')\n"
        )
    args = ["fit", "--config", "mnist_lenet5", "--data.data_dir", str(data), "--data.download", "false",
            "--data.num_workers", "0", "--trainer.enable_progress_bar", "false"]  # fmt: skip
    first = cnnlab(installed, work, *args, "--trainer.max_epochs", "1")
    assert first.returncode == 0, first.stderr[-2000:]
    run = work / "lightning_logs" / "mnist_lenet5" / "version_0"
    names = {p.name for p in run.iterdir()}
    assert {"config.yaml", "run.yaml", "hparams.yaml", "model_summary.md", "report", "checkpoints"} <= names
    assert (run / "checkpoints" / "last.ckpt").is_file()
    record = yaml.safe_load((run / "run.yaml").read_text())
    assert record["defaults"] == str(installed / "cnnlab" / "experiments" / "defaults.yaml")
    resumed = cnnlab(installed, work, *args, "--trainer.max_epochs", "2", "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert sorted(p.name for p in run.parent.iterdir()) == ["version_0"]  # continued in its own folder
    assert "Restored all states from the checkpoint" in resumed.stdout + resumed.stderr
