"""``run.yaml`` beside ``config.yaml`` in every run folder: what is needed to reproduce the run.

LightningCLI already writes the resolved config (``config.yaml``); ``RunInfo`` adds the command line,
start time, seed, the git commit of the code (and whether the tree had uncommitted changes), the
versions of Python and the main packages, and the device.
"""

import datetime
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import lightning as L
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("torch", "torchvision", "lightning", "torchmetrics", "numpy", "jsonargparse")


def git_state(folder: Path = ROOT) -> dict:
    """Commit and dirty flag of the git checkout holding ``folder``; empty when it is not in one."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return {}


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    versions["torch"] = str(torch.__version__)  # with its build tag (+cpu, +cu130, ...)
    return versions


def device_info(trainer: L.Trainer) -> dict:
    device = trainer.strategy.root_device
    info = {"accelerator": device.type, "devices": trainer.num_devices, "num_nodes": trainer.num_nodes}
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
    else:
        info["name"] = cpu_name()
    info["precision"] = str(trainer.precision)
    return info


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class RunInfo(L.Callback):
    """Writes ``run.yaml`` into the logger's run folder when fit (or test, validate, predict) starts."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        folder = trainer.log_dir
        if not trainer.is_global_zero or folder is None or trainer.logger is None or trainer.fast_dev_run:
            return  # fast_dev_run logs nowhere: its log_dir is the working directory
        seed = os.environ.get("PL_GLOBAL_SEED")
        stage = str(getattr(stage, "value", stage))  # Lightning passes a TrainerFn enum
        info = {
            "command": ["cnnlab", *sys.argv[1:]],
            "stage": stage,
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "seed": int(seed) if seed is not None else None,
            "git": git_state(),
            "packages": package_versions(),
            "device": device_info(trainer),
        }
        Path(folder).mkdir(parents=True, exist_ok=True)
        name = "run.yaml" if stage == "fit" else f"run_{stage}.yaml"
        (Path(folder) / name).write_text(yaml.safe_dump(info, sort_keys=False))
