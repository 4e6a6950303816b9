"""``cnnlab sweep``: a grid x seeds, or an Optuna search, of ordinary cnnlab runs; one worker per process.

    cnnlab sweep mnist_zoo --data.data_dir data --trainer.max_epochs 2   # a packaged sweep, or a file
    cnnlab sweep my_sweep.yaml --storage postgresql://USER:PASSWORD@HOST/DB   # one worker per machine

A sweep file (``cnnlab.sweep_file``) names a base recipe, a grid of config values and seeds, or a search
space with a trial count, and the metric. Every trial is a ``cnnlab fit`` run built by
``cnnlab.cli.build`` from ``--config RECIPE``, the command's options, the trial's values and
``--seed_everything SEED``: the same defaults, checkpoints, test of the best checkpoint, pictures and
``run.yaml`` as the command (whose ``command`` entry reproduces the trial), logged to
``<save_dir>/<sweep name>/<trial name>/version_N`` with ``sweep_trial.yaml`` beside the events.
Trials run one after another in the worker's process; each gets its seed, command line and environment
afresh.

Before any trial runs, every configuration (the grid's, or a search's bounds and choices) is read
through the recipe parser and built without a trainer: an unknown key or a bad value ends the command
with one line and nothing written. Workers started with the same sweep file and storage share the work
(``cnnlab.sweep_study``: each grid point runs once; a dead worker's trial runs again); a finished sweep
started again runs nothing and says so. At the end a worker prints the sweep's table, grouped by
configuration (mean +- std over seeds), and the best configuration as a ``cnnlab fit`` command.
"""

import logging
import os
import shlex
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

from cnnlab.sweep_file import TRIAL_FILE, describe, option_args, sweep_names
from cnnlab.tools import tool_parser

EPILOG = (
    "Options other than these are cnnlab fit options applied to every trial, e.g. --trainer.max_epochs 2 "
    "--data.data_dir DIR. Trials log to <save_dir>/<sweep name>/<trial>/version_N "
    "(--trainer.logger.init_args.save_dir, default lightning_logs)."
)


def parser():
    p = tool_parser("sweep", EPILOG)
    p.add_argument(
        "sweep",
        help=f"a sweep file, or the name of a packaged sweep: {', '.join(sweep_names())} (docs/sweeps.md)",
    )
    p.add_argument(
        "--storage",
        help="where the study lives: default a journal file in the sweep's log folder (workers on this "
        "machine); postgresql://USER:PASSWORD@HOST/DB or mysql:// for workers on several machines",
    )
    p.add_argument("--study", help="the study's name in the storage (default: the sweep file's name)")
    return p


def main(argv: list[str] | None = None) -> None:
    args, options = parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    from cnnlab.sweep_file import load

    sweep = load(args.sweep)
    _refuse_swept_options(options, sweep)
    save_dir = check(sweep, options)  # every configuration parses and builds: nothing is written before
    from cnnlab.sweep_study import SweepStudy, open_storage

    folder = save_dir / sweep.name
    study = SweepStudy(open_storage(args.storage, folder), args.study or sweep.name, sweep)
    Worker(study, sweep, options, folder).run()


def _refuse_swept_options(options: list[str], sweep) -> None:
    from cnnlab.errors import UserError

    given = {o.split("=", 1)[0].removeprefix("--") for o in options if o.startswith("--")}
    swept = sorted(given & {k.removesuffix("+") for k in sweep.keys()} | given & {"seed_everything"})
    if swept:
        raise UserError(
            f"--{swept[0]} is set by the sweep {sweep.path} (its grid, search or seeds); leave it off the "
            "command line or out of the sweep file"
        )


# -- checking every configuration first -----------------------------------------------------------------
def check_configurations(sweep) -> list[dict]:
    """The configurations to check before anything runs: the grid's, or for a search, its bounds (all
    lows, all highs) with every categorical choice."""
    if not sweep.is_search:
        return sweep.configurations()
    longest = max([2, *(len(d.choices) for d in sweep.search.values())])
    return [
        {
            key: dim.choices[i % len(dim.choices)]
            if dim.kind == "categorical"
            else (dim.low, dim.high)[i % 2]
            for key, dim in sweep.search.items()
        }
        for i in range(longest)
    ]


def check(sweep, options: list[str]) -> Path:
    """Read and build (model and data, no trainer) every configuration as its trials will; the logs
    folder the trials share (the logger's save_dir)."""
    from cnnlab.errors import UserError
    from cnnlab.lightning_cli import CNNLabCLI

    save_dir = None
    seed_log = logging.getLogger("lightning.fabric.utilities.seed")  # "Seed set to ..." for every check
    level = seed_log.level
    seed_log.setLevel(logging.WARNING)
    try:
        for config in check_configurations(sweep):
            args = ["fit", *sweep.base_args(), *options, *option_args(config)]
            try:
                cli = CNNLabCLI(args=args, execute=False, with_trainer=False, tool=True)
            except UserError as err:
                raise UserError(f"sweep {sweep.path}, configuration {describe(config)}: {err}") from err
            logger = cli.config.fit.trainer.get("logger")
            if not str(getattr(logger, "class_path", "")).endswith("TensorBoardLogger"):
                raise UserError(
                    "a sweep's trials log with TensorBoardLogger (cnnlab report reads their events); "
                    "keep the recipe's logger"
                )
            save_dir = Path(logger.init_args.save_dir)
            del cli
    finally:
        seed_log.setLevel(level)
    return save_dir


# -- one worker -----------------------------------------------------------------------------------------
class Worker:
    def __init__(self, study, sweep, options: list[str], folder: Path):
        self.study, self.sweep, self.options, self.folder = study, sweep, options, folder
        self.points = [] if sweep.is_search else sweep.points()

    def say(self, text: str) -> None:
        print(f"cnnlab sweep: {text}", flush=True)

    def run(self) -> None:
        sweep, study = self.sweep, self.study
        size = f"{sweep.n_trials} trials" if sweep.is_search else f"{len(self.points)} trials"
        if study.finished(self.points):
            self.say(f"{sweep.name} is finished ({self._progress()}); nothing to run")
            self.print_results()
            return
        self.say(f"{sweep.name}: {size}, study {study.name}; trials log to {self.folder}")
        ran = 0
        while True:
            claimed = study.claim_search() if sweep.is_search else study.claim_point(self.points)
            for number, why in study.reclaimed:
                self.say(f"trial {number} marked failed: {why}; its place is free again")
            study.reclaimed.clear()
            if claimed is None:
                break
            if sweep.is_search:
                trial = claimed
                from cnnlab.sweep_study import suggest

                config = {key: suggest(trial, key, dim) for key, dim in sweep.search.items()}
                seed = sweep.seeds[0] if sweep.seeds else None
                name = f"trial_{trial.number:03d}"
            else:
                trial, point = claimed
                config, seed, name = point.config, point.seed, point.name
            self.run_trial(trial, config, seed, name)
            ran += 1
        left = "" if study.finished(self.points) else "; other workers are running the rest"
        self.say(f"this worker ran {ran} trials; {sweep.name}: {self._progress()}{left}")
        self.print_results()

    def _progress(self) -> str:
        counts = self.study.counts()
        return ", ".join(f"{n} {state}" for state, n in counts.items() if n or state == "complete")

    # -- one trial ---------------------------------------------------------------------------------------
    def fit_command(self, config: dict) -> list[str]:
        """The configuration as a ``cnnlab fit`` command (without the seed and the sweep's log folder)."""
        return ["fit", *self.sweep.base_args(), *self.options, *option_args(config)]

    def trial_args(self, config: dict, seed: int | None, name: str) -> list[str]:
        args = self.fit_command(config)
        if seed is not None:
            args += ["--seed_everything", str(seed)]
        return [*args, "--trainer.logger.init_args.save_dir", str(self.folder),
                "--trainer.logger.init_args.name", name]  # fmt: skip

    def run_trial(self, trial, config: dict, seed: int | None, name: str) -> None:
        import optuna
        from optuna.trial import TrialState

        from cnnlab.callbacks.trial_reporter import TrialReporter
        from cnnlab.cli import build

        sweep, study = self.sweep, self.study
        args = self.trial_args(config, seed, name)
        seeded = "" if seed is None else f", seed {seed}"
        self.say(f"trial {trial.number}: {describe(config)}{seeded}")
        record = {"sweep": sweep.name, "study": study.name, "trial": trial.number, "configuration": config,
                  "seed": seed, "metric": sweep.metric, "direction": sweep.direction,
                  "command": self.fit_command(config), "state": "running"}  # fmt: skip
        _set_attrs(trial, {key: record[key] for key in ("configuration", "seed", "command")})
        started = time.perf_counter()
        run_dir = None
        with isolated(args), study.heartbeat(study.trial_id(trial)):
            try:
                built = build(args)
                run_dir = Path(built.trainer.log_dir)
                _set_attrs(trial, {"run": str(run_dir)})
                _write_record(run_dir, record)
                reporter = TrialReporter(trial, sweep.metric, sweep.direction)
                built.trainer.callbacks.append(reporter)
                built.run()
                state = TrialState.COMPLETE
            except optuna.TrialPruned:
                state = TrialState.PRUNED
            except BaseException:
                record["state"] = "failed"
                if run_dir is not None:
                    _write_record(run_dir, record)
                study.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                self.say(f"trial {trial.number} failed; it runs again when a worker starts")
                raise
        seconds = time.perf_counter() - started
        test = built.trainer.callback_metrics.get("test/acc")
        fit_s = reporter.seconds  # training and validation: the wall time cnnlab report shows
        results = {"seconds": None if fit_s is None else round(fit_s, 1), "epochs": len(reporter.values),
                   "test_acc": None if test is None else float(test)}  # fmt: skip
        _set_attrs(trial, results)
        value = reporter.best
        if state == TrialState.COMPLETE and value is None:
            state = TrialState.FAIL  # no finite value of the metric: nothing to rank
        finished = study.study.tell(
            trial, value if state == TrialState.COMPLETE else None, state=state, skip_if_finished=True
        )
        record.update(state=state.name.lower(), value=value, **results)
        _write_record(run_dir, record)
        if finished.state != state:
            self.say(f"trial {trial.number} had been marked {finished.state.name.lower()} meanwhile")
        shown = "" if value is None else f" {sweep.metric} {value:.4f}"
        self.say(f"trial {trial.number} {state.name.lower()}:{shown} in {seconds:.0f} s -> {run_dir}")

    # -- the results -------------------------------------------------------------------------------------
    def print_results(self) -> None:
        from cnnlab.tools.report import SweepTrial, configurations, sweep_section

        trials = [
            SweepTrial(
                sweep=self.sweep.name,
                config=t.user_attrs.get("configuration") or {},
                seed=t.user_attrs.get("seed"),
                value=t.value,
                test_acc=t.user_attrs.get("test_acc"),
                epochs=t.user_attrs.get("epochs"),
                seconds=t.user_attrs.get("seconds"),
                command=t.user_attrs.get("command") or [],
            )
            for t in self.study.done_trials()
        ]
        if not trials:
            return
        groups = configurations(trials, self.sweep.direction)
        print()
        print(sweep_section(self.sweep.name, groups, self.sweep.metric, self.sweep.direction))
        print(f"\ncnnlab report {shlex.quote(str(self.folder))} tabulates and plots the runs in this folder")


def _set_attrs(trial, attrs: dict) -> None:
    """Record ``attrs`` on a running trial; one that another worker has marked failed keeps its own."""
    from optuna.exceptions import UpdateFinishedTrialError

    try:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
    except UpdateFinishedTrialError:
        pass


def _write_record(run_dir: Path, record: dict) -> None:
    """``sweep_trial.yaml`` in the trial's run folder, replaced whole (never half-written)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    partial = run_dir / f".{TRIAL_FILE}.partial"
    partial.write_text(yaml.safe_dump(record, sort_keys=False))
    os.replace(partial, run_dir / TRIAL_FILE)


@contextmanager
def isolated(args: list[str]):
    """Run a trial as its own command: ``sys.argv`` is the trial's ``cnnlab fit`` command (what
    ``run.yaml`` records), and the environment (Lightning's seed variables) and torch's thread count are
    restored afterwards, so one trial leaves nothing to the next."""
    import torch

    argv, environ, threads = sys.argv, dict(os.environ), torch.get_num_threads()
    sys.argv = [argv[0] if argv else "cnnlab", *args]
    try:
        yield
    finally:
        sys.argv = argv
        os.environ.clear()
        os.environ.update(environ)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


if __name__ == "__main__":
    main(sys.argv[1:])
