"""Command lines for the tests' tiny ``cnnlab`` runs: a recipe, the fake data, a quiet trainer."""

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from cnnlab.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def recipe(name: str) -> list[str]:
    """``--config`` of ``experiments/<name>.yaml``."""
    return ["--config", str(EXPERIMENTS / f"{name}.yaml")]


def on_data(root, batch_size: int | None = None, workers: int | None = None) -> list[str]:
    """The fake data set in ``root``, never downloaded; unset options keep the recipe's values."""
    args = ["--data.data_dir", str(root), "--data.download", "false"]
    if workers is not None:
        args += ["--data.num_workers", str(workers)]
    if batch_size is not None:
        args += ["--data.batch_size", str(batch_size)]
    return args


def on_folder(root, workers: int | None = None) -> list[str]:
    """The image folder data set in ``root`` (``<split>/<class>/*.png``)."""
    args = ["--data", "ImageFolderDataModule", "--data.data_dir", str(root)]
    if workers is not None:
        args += ["--data.num_workers", str(workers)]
    return args


def run_main(args: list[str], capsys) -> tuple[int, str]:
    """Exit code and stderr of a ``cnnlab`` command that ends in an error."""
    with pytest.raises(SystemExit) as done:
        main(args)
    return done.value.code, capsys.readouterr().err.strip()


@contextmanager
def inside(folder: Path):
    """Run in ``folder`` with a bare ``sys.argv``, for fixtures wider than one test (no monkeypatch)."""
    # LightningCLI warns when given args beside pytest's own command line
    cwd, argv = os.getcwd(), sys.argv
    os.chdir(folder)
    sys.argv = ["cnnlab"]
    try:
        yield
    finally:
        os.chdir(cwd)
        sys.argv = argv


def child_env() -> dict[str, str]:
    """The environment of a ``cnnlab`` in its own process: this checkout's packages first."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def run_child(args: list[str], cwd: Path, timeout: int) -> subprocess.CompletedProcess:
    """``cnnlab`` in its own process, run to the end; its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "cnnlab.cli", *args],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
