"""Shared pieces of the benchmark scripts: data location, the cnnlab run, tables."""

import argparse
import contextlib
import io
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
EXPERIMENTS = ROOT / "experiments"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--cifar", default=str(SHARED_DATA / "cifar10-jpeg"), help="CIFAR-10 as an image folder")
    p.add_argument("--mnist", default=str(SHARED_DATA), help="folder holding MNIST/raw")
    p.add_argument("--repeats", type=int, default=3, help="measurements per variant (the median is reported)")
    return p


def cnnlab_fit(args: list[str], quiet: bool = True):
    """Run ``cnnlab fit`` in this process; returns the CLI object (trainer, model, datamodule)."""
    from cnnlab.lightning_cli import CNNLabCLI

    sys.argv = ["cnnlab"]
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
        with contextlib.redirect_stderr(sink) if quiet else contextlib.nullcontext():
            return CNNLabCLI(args=["fit", *args])


def median(values) -> float:
    return statistics.median(values)


def table(header: list[str], rows: list[list]) -> str:
    cells = [header] + [[f"{c:,.1f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> str:
    import torch

    return f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores"
