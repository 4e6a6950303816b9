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

Trials of ``cnnlab sweep`` (run folders with ``sweep_trial.yaml``, also found one level deeper:
``<sweep>/<trial>/version_N``) are grouped by configuration first: per sweep, a table of each
configuration's best-epoch metric as mean +- sample standard deviation over its completed trials (the
seeds) and their count, best first, and the best configuration as a ``cnnlab fit`` command; the plot
then draws each configuration's mean validation curve with a band of +- one standard deviation.
"""

import json
import logging
import re
import shlex
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cnnlab.errors import UserError
from cnnlab.sweep_file import TRIAL_FILE, describe
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
    trial: dict | None = None  # sweep_trial.yaml of a sweep's trial
    metric: list[float] = field(default_factory=list)  # the sweep's metric by epoch, when not val/acc

    @property
    def best(self) -> float | None:
        return max(acc for _, _, acc in self.val_acc) if self.val_acc else None

    def sweep_trial(self) -> "SweepTrial | None":
        """The run as a completed trial of its sweep (None for other runs)."""
        if not self.trial or self.trial.get("state") != "complete":
            return None
        metric, direction = self.trial.get("metric", "val/acc"), self.trial.get("direction", "maximize")
        values = [acc for _, _, acc in self.val_acc] if metric == "val/acc" else self.metric
        value = (max if direction == "maximize" else min)(values) if values else None
        return SweepTrial(
            sweep=str(self.trial.get("sweep", "")),
            config=self.trial.get("configuration") or {},
            seed=self.trial.get("seed"),
            value=value,
            test_acc=self.test_acc,
            epochs=self.epochs,
            seconds=self.seconds,
            command=list(self.trial.get("command") or []),
            curve=list(self.val_acc),
            metric=metric,
            direction=direction,
        )


@dataclass
class SweepTrial:
    """A completed trial of a sweep: read from its run folder (here) or its study (``cnnlab sweep``)."""

    sweep: str
    config: dict
    seed: int | None
    value: float | None  # the metric's best epoch
    test_acc: float | None = None
    epochs: int | None = None
    seconds: float | None = None
    command: list = field(default_factory=list)  # the configuration's cnnlab fit command
    curve: list = field(default_factory=list)  # (epoch, seconds, val/acc)
    metric: str = "val/acc"
    direction: str = "maximize"


@dataclass
class Configuration:
    """A sweep's configuration and its completed trials (one per seed)."""

    sweep: str
    config: dict
    trials: list[SweepTrial]

    @property
    def values(self) -> list[float]:
        return [t.value for t in self.trials]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float | None:
        """Sample standard deviation (n - 1); None for one trial."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None


# -- reading runs ---------------------------------------------------------------------------------------
def run_folders(logs: Path) -> list[Path]:
    if not logs.is_dir():
        raise UserError(f"{logs} does not exist; pass the folder that cnnlab fit logs to (lightning_logs)")
    pattern = re.compile(r"version_\d+")
    folders = [p for p in logs.glob("version_*") if pattern.fullmatch(p.name)]
    folders += [p for p in logs.glob("*/version_*") if pattern.fullmatch(p.name)]
    # a sweep's trials: <sweep>/<trial>/version_N
    folders += [
        p for p in logs.glob("*/*/version_*") if pattern.fullmatch(p.name) and (p / TRIAL_FILE).is_file()
    ]
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
    metric = (run.trial or {}).get("metric", "val/acc")
    if metric != "val/acc" and metric in tags:
        run.metric = [e.value for e in events.Scalars(metric)]
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
    trial = _yaml(folder / TRIAL_FILE)
    run.trial = trial if isinstance(trial, dict) and trial.get("sweep") else None
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


def configurations(trials: list[SweepTrial], direction: str = "maximize") -> list[Configuration]:
    """Completed trials grouped by (sweep, configuration), each sweep's best configuration first."""
    groups: dict[tuple[str, str], Configuration] = {}
    for trial in trials:
        if trial.value is None:
            continue
        key = (trial.sweep, json.dumps(trial.config, sort_keys=True))
        groups.setdefault(key, Configuration(trial.sweep, trial.config, [])).trials.append(trial)
    sign = -1 if direction == "maximize" else 1
    return sorted(groups.values(), key=lambda g: (g.sweep, sign * g.mean, describe(g.config)))


def sweep_table(groups: list[Configuration], metric: str = "val/acc") -> str:
    percent = metric.rsplit("/", 1)[-1].startswith("acc")
    rows = []
    for i, group in enumerate(groups, 1):
        tests = [t.test_acc for t in group.trials if t.test_acc is not None]
        epochs = sorted({t.epochs for t in group.trials if t.epochs is not None})
        seconds = [t.seconds for t in group.trials if t.seconds is not None]
        rows.append(
            [
                i,
                describe(group.config),
                len(group.trials),
                _mean_std(group.values, percent),
                _mean_std(tests, True),
                "" if not epochs else epochs[0] if len(epochs) == 1 else f"{epochs[0]}-{epochs[-1]}",
                _duration(statistics.fmean(seconds) if seconds else None),
            ]
        )
    header = ["#", "configuration", "n", f"best {metric}: mean ± std", "test acc: mean ± std", "epochs",
              "wall time (mean)"]  # fmt: skip
    return markdown_table(header, rows, "rlrrrrr")


def _mean_std(values: list[float], percent: bool) -> str:
    if not values:
        return ""
    scale, unit = (100, "%") if percent else (1, "")
    mean = scale * statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.2f}{unit}" if percent else f"{mean:.4g}"
    std = scale * statistics.stdev(values)
    return f"{mean:.2f} ± {std:.2f}{unit}" if percent else f"{mean:.4g} ± {std:.2g}"


def sweep_section(name: str, groups: list[Configuration], metric: str, direction: str) -> str:
    """A sweep's table, and its best configuration as a command."""
    best = groups[0]
    trials = sum(len(g.trials) for g in groups)
    return "\n".join(
        [
            f"## Sweep {name}: {len(groups)} configurations, {trials} completed trials",
            "",
            f"Each trial's best-epoch {metric} ({direction}); mean ± sample standard deviation over the "
            "configuration's n trials (seeds), best first.",
            "",
            sweep_table(groups, metric),
            "",
            f"Best configuration ({describe(best.config)}):",
            "",
            f"    {shlex.join(['cnnlab', *best.trials[0].command])}" if best.trials[0].command else "",
        ]
    )


def sweep_groups(runs: list[Run]) -> dict[str, list[Configuration]]:
    """Each sweep's configurations among ``runs`` (completed trials only), by sweep name."""
    trials = [t for run in runs if (t := run.sweep_trial()) is not None]
    by_sweep = {}
    for name in sorted({t.sweep for t in trials}):
        mine = [t for t in trials if t.sweep == name]
        by_sweep[name] = configurations(mine, mine[0].direction)
    return {name: groups for name, groups in by_sweep.items() if groups}


def sweep_sections(runs: list[Run]) -> list[str]:
    """One section per sweep with completed trials among ``runs``."""
    return [
        sweep_section(name, groups, groups[0].trials[0].metric, groups[0].trials[0].direction)
        for name, groups in sweep_groups(runs).items()
    ]


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


@dataclass
class Series:
    """One line of the plot: a run, or a sweep configuration's mean over its trials (with ``std``)."""

    label: str
    epochs: list[int]
    seconds: list[float]
    acc: list[float]
    std: list[float] | None = None

    @property
    def best(self) -> float:
        return max(self.acc)


def plot_series(runs: list[Run]) -> list[Series]:
    """A sweep's completed trials as one mean curve per configuration (its unfinished ones are left
    out); every run outside sweeps as its own."""
    series = [
        _mean_curve(f"{name}: {describe(group.config)} (n={len(group.trials)})", group)
        for name, groups in sweep_groups(runs).items()
        for group in groups
    ]
    for run in runs:
        if run.trial is None and run.val_acc:
            epochs, seconds, acc = (list(v) for v in zip(*run.val_acc, strict=True))
            series.append(Series(f"{run.name} ({run.arch})", epochs, seconds, acc))
    return sorted((s for s in series if s.acc), key=lambda s: -s.best)


def _mean_curve(label: str, group: Configuration) -> Series:
    by_epoch: dict[int, list[tuple[float, float]]] = {}
    for trial in group.trials:
        for epoch, seconds, acc in trial.curve:
            by_epoch.setdefault(epoch, []).append((seconds, acc))
    epochs = sorted(by_epoch)
    seconds = [statistics.fmean(s for s, _ in by_epoch[e]) for e in epochs]
    acc = [statistics.fmean(a for _, a in by_epoch[e]) for e in epochs]
    std = [statistics.stdev(a for _, a in by_epoch[e]) if len(by_epoch[e]) > 1 else 0.0 for e in epochs]
    return Series(label, epochs, seconds, acc, std)


def plot(runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = plot_series(runs)
    longest = max((c.seconds[-1] for c in curves), default=0)
    unit, scale = ("minutes", 60) if longest > 180 else ("seconds", 1)
    fig, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for curve in curves:
        acc = [100 * a for a in curve.acc]
        minutes = [s / scale for s in curve.seconds]
        style = {"marker": "o", "markersize": 5, "linewidth": 1.5}  # one-epoch runs are single dots
        (line,) = by_epoch.plot(curve.epochs, acc, label=curve.label, **style)
        by_time.plot(minutes, acc, color=line.get_color(), **style)
        if curve.std is not None:  # a sweep configuration: +- one standard deviation over its trials
            low = [100 * (a - s) for a, s in zip(curve.acc, curve.std, strict=True)]
            high = [100 * (a + s) for a, s in zip(curve.acc, curve.std, strict=True)]
            by_epoch.fill_between(curve.epochs, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
            by_time.fill_between(minutes, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    by_epoch.set(xlabel="epoch", ylabel="validation accuracy (%)", title="validation accuracy by epoch")
    by_time.set(xlabel=f"wall time ({unit})", title="validation accuracy by wall time")
    if any(c.std is not None for c in curves):
        by_epoch.set_title("validation accuracy by epoch (sweeps: mean ± std)")
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
    sections = sweep_sections(runs)
    if sections:  # the sweeps' configurations first, then every run
        table = "\n\n".join([*sections, f"## Runs\n\n{table}"])
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
