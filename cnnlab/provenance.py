"""Where a run's code and machine came from: git commit, package versions, device, CPU name.

``RunInfo`` writes them to every run's ``run.yaml``; benchmarks and the compression report quote them.
"""

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import lightning as L
import torch

ROOT = Path(__file__).resolve().parents[1]  # the checkout holding cnnlab/, when it runs from one
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
