"""``cnnlab report``: a leaderboard of every run under a logs folder.

    cnnlab report                       # lightning_logs/
    cnnlab report runs/ --output board.md --plot board.png

Reads every run folder ``<experiment>/version_N/`` (its TensorBoard event files, and as plain data its
``hparams.yaml``, ``config.yaml`` and ``model_summary.md``: nothing a run folder names is imported or
built) and writes a Markdown table sorted by best validation accuracy, and a PNG with two
panels: validation accuracy against epoch and against wall time, one line per run.

* parameters: the count in the run's model card (``model_summary.md``);
* wall time: from the run's first event (the logger starting) to its last training or validation
  event, so the post-fit test is left out; a resumed run includes the pause;
* images/s: median over epochs of ``time/train_images_per_s`` (``EpochTimer``);
* epochs: validated epochs.

Folders without training or validation events and without checkpoints (those of ``cnnlab predict``
or ``cnnlab test``) are not runs and are left out; runs in progress or without ``val/acc`` appear with
blanks.
"""

import logging
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cnnlab.errors import UserError
from cnnlab.tables import markdown_table
from cnnlab.tools import TOOLS

FIT_TAGS = ("train/", "val/", "time/")
# The totals line of a model card (cnnlab.model_card.render), read as text: no model is built
CARD_PARAMETERS = re.compile(r"^- parameters: ([\d,]+)", re.M)


@dataclass
class Run:
    name: str  # <experiment>/version_N
    arch: str = ""
    data: str = ""
    params: int | None = None
    val_acc: list[tuple[int, float, float]] = field(default_factory=list)  # (epoch, seconds, accuracy)
    test_acc: float | None = None
    epochs: int | None = None
    seconds: float | None = None
    images_per_s: float | None = None

    @property
    def best(self) -> float | None:
        return max(acc for _, _, acc in self.val_acc) if self.val_acc else None


# -- reading runs ---------------------------------------------------------------------------------------
def run_folders(logs: Path) -> list[Path]:
    if not logs.is_dir():
        raise UserError(f"{logs} does not exist; pass the folder that cnnlab fit logs to (lightning_logs)")
    pattern = re.compile(r"version_\d+")
    folders = [p for p in logs.glob("version_*") if pattern.fullmatch(p.name)]
    folders += [p for p in logs.glob("*/version_*") if pattern.fullmatch(p.name)]
    return sorted((p for p in folders if p.is_dir()), key=_natural)


def _natural(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def read_run(folder: Path, logs: Path) -> Run | None:
    """The run in ``folder``, or None when it holds no training (a predict or test folder)."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    # A resumed run's purged steps are expected (cnnlab resumes with purge_step); TensorBoard warns of them.
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    events = EventAccumulator(str(folder), size_guidance={SCALARS: 0})
    events.Reload()
    tags = events.Tags()["scalars"]
    fit_tags = [t for t in tags if t.startswith(FIT_TAGS)]
    if not fit_tags and not (folder / "checkpoints").is_dir():
        return None
    run = Run(str(folder.relative_to(logs)) if folder != logs else folder.name)
    _read_settings(run, folder)
    try:
        start = events.FirstEventTimestamp()
    except ValueError:  # no events at all yet
        return run
    epoch_at = {e.step: int(e.value) for e in events.Scalars("epoch")} if "epoch" in tags else {}
    if "val/acc" in tags:
        for i, e in enumerate(events.Scalars("val/acc")):
            run.val_acc.append((epoch_at.get(e.step, i) + 1, e.wall_time - start, e.value))
        run.epochs = len(run.val_acc)
    if "test/acc" in tags:
        run.test_acc = events.Scalars("test/acc")[-1].value
    if fit_tags:
        run.seconds = max(events.Scalars(t)[-1].wall_time for t in fit_tags) - start
    if "time/train_images_per_s" in tags:
        run.images_per_s = statistics.median(e.value for e in events.Scalars("time/train_images_per_s"))
    return run


def _read_settings(run: Run, folder: Path) -> None:
    hparams = _yaml(folder / "hparams.yaml")
    config = _yaml(folder / "config.yaml")
    model_args = ((config.get("model") or {}).get("init_args")) or {}
    settings = {**model_args, **hparams}
    run.arch = str(settings.get("arch") or "")
    run.data = str((config.get("data") or {}).get("class_path") or "").rsplit(".", 1)[-1]
    run.data = run.data.removesuffix("DataModule")
    card = folder / "model_summary.md"
    if card.is_file():
        found = CARD_PARAMETERS.search(card.read_text(errors="replace"))
        run.params = int(found.group(1).replace(",", "")) if found else None


def _yaml(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        return {}


# -- output ---------------------------------------------------------------------------------------------
def leaderboard(runs: list[Run]) -> str:
    ranked = sorted(runs, key=lambda r: (r.best is None, -(r.best or 0), r.name))
    rows = [
        [
            i,
            run.name,
            run.arch,
            run.data,
            "" if run.params is None else _params(run.params),
            _percent(run.best),
            _percent(run.test_acc),
            "" if run.epochs is None else run.epochs,
            _duration(run.seconds),
            "" if run.images_per_s is None else f"{run.images_per_s:,.0f}",
        ]
        for i, run in enumerate(ranked, 1)
    ]
    header = ["#", "experiment", "architecture", "data", "params", "best val acc", "test acc", "epochs",
              "wall time", "train images/s"]  # fmt: skip
    return markdown_table(header, rows, "rlllrrrrrr")


def _params(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}K"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}%"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def plot(runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = sorted((r for r in runs if r.val_acc), key=lambda r: -(r.best or 0))
    longest = max((r.val_acc[-1][1] for r in curves), default=0)
    unit, scale = ("minutes", 60) if longest > 180 else ("seconds", 1)
    fig, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for run in curves:
        epochs, seconds, acc = zip(*run.val_acc, strict=True)
        acc = [100 * a for a in acc]
        style = {"marker": "o", "markersize": 5, "linewidth": 1.5}  # one-epoch runs are single dots
        (line,) = by_epoch.plot(epochs, acc, label=f"{run.name} ({run.arch})", **style)
        by_time.plot([s / scale for s in seconds], acc, color=line.get_color(), **style)
    by_epoch.set(xlabel="epoch", ylabel="validation accuracy (%)", title="validation accuracy by epoch")
    by_time.set(xlabel=f"wall time ({unit})", title="validation accuracy by wall time")
    for ax in (by_epoch, by_time):
        ax.grid(alpha=0.3)
    by_epoch.xaxis.get_major_locator().set_params(integer=True)
    if curves:
        fig.legend(loc="lower center", ncol=min(3, len(curves)), frameon=False, fontsize=9)
    rows = -(-len(curves) // 3) if curves else 0
    fig.tight_layout(rect=(0, 0.06 * rows + 0.02, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- the command ----------------------------------------------------------------------------------------
def parse_args(argv: list[str]):
    import argparse

    p = argparse.ArgumentParser(prog="cnnlab report", description=TOOLS["report"].description)
    p.add_argument("logs", nargs="?", default="lightning_logs", help="logs folder (default lightning_logs)")
    p.add_argument("--output", help="Markdown file to write (default <logs>/leaderboard.md)")
    p.add_argument("--plot", help="PNG file to write (default <logs>/leaderboard.png)")
    return p.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    logs = Path(args.logs)
    runs = [run for folder in run_folders(logs) if (run := read_run(folder, logs)) is not None]
    if not runs:
        raise UserError(f"no runs in {logs}; it should hold <experiment>/version_N folders from cnnlab fit")
    table = leaderboard(runs)
    output = Path(args.output) if args.output else logs / "leaderboard.md"
    picture = Path(args.plot) if args.plot else logs / "leaderboard.png"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        f"# Leaderboard of {logs}\n\n{table}\n\n![validation accuracy]({_relative(picture, output)})\n"
    )
    plot(runs, picture)
    print(table)
    print(f"\nwrote {output} and {picture}")


def _relative(target: Path, markdown: Path) -> str:
    try:
        return str(target.resolve().relative_to(markdown.resolve().parent))
    except ValueError:
        return str(target.resolve())


if __name__ == "__main__":
    main(sys.argv[1:])
