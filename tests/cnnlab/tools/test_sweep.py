"""``cnnlab sweep`` on the tiny generated MNIST: trials are ordinary runs, workers share a study, a killed
worker's trial runs again, and bad input is one line with nothing written."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from cnnlab.cli import main
from cnnlab.lightning_cli import CNNLabCLI
from cnnlab.sweep_file import TRIAL_FILE
from cnnlab.sweep_study import POINT, STALE, open_storage
from tests.cli_args import QUIET, child_env, on_data, run_child, run_main

ZOO = "recipe: mnist_cnn\ngrid:\n  model.arch: [lenet5, mnist_cnn]\nseeds: [0]\n"


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])


def write_sweep(folder: Path, text: str = ZOO, name: str = "zoo") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def options(mnist_root, epochs: int = 1) -> list[str]:
    return [*on_data(mnist_root, batch_size=64, workers=0), *QUIET, "--trainer.max_epochs", str(epochs)]


def study_trials(folder: Path, name: str = "zoo"):
    storage = open_storage(None, folder)
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def val_acc(run: Path) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run))
    events.Reload()
    return [e.value for e in events.Scalars("val/acc")]


# -- bad input: one line, exit status 2, nothing written ------------------------------------------------
BAD_INPUT = {
    "unknown key in the grid": (
        ZOO.replace("model.arch", "model.archh"),
        [],
        "archh=lenet5: unknown config key 'model.archh'",
    ),
    "unknown trainer key": (
        "recipe: mnist_cnn\ngrid:\n  trainer.max_epohcs: [1, 2]\n",
        [],
        "unknown config key 'trainer.max_epohcs' (did you mean trainer.max_epochs",
    ),
    "search bound of the wrong type": (
        "recipe: mnist_cnn\nsearch:\n  optimizer.init_args.lr: {low: small, high: 0.1}\nn_trials: 2\n",
        [],
        "low must be a number, not 'small'",
    ),
    "unreachable storage": (
        ZOO,
        ["--storage", "postgresql://me:pw@127.0.0.1:1/nothing"],
        "storage postgresql://me:***@",
    ),
    "missing sqlite folder": (
        ZOO,
        ["--storage", "sqlite:////no/such/folder/s.db"],
        "cannot open storage sqlite:",
    ),
    "unparsable sweep file": ("recipe: mnist_cnn\ngrid: {model.arch: [lenet5\n", [], "is not readable YAML"),
    "untrusted class in the grid": (
        "recipe: mnist_cnn\ngrid:\n  trainer.callbacks+: [os.system]\n",
        [],
        "which cnnlab does not import",
    ),
    "option that the grid sets": (ZOO, ["--model.arch", "lenet5"], "--model.arch is set by the sweep"),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_one_line_and_writes_nothing(case, mnist_root, in_tmp, capsys):
    text, extra, message = BAD_INPUT[case]
    sweep = write_sweep(in_tmp, text)
    code, err = run_main(["sweep", str(sweep), *options(mnist_root), *extra], capsys)
    assert code == 2
    assert err.startswith("cnnlab: error: ") and "\n" not in err and message in err, err
    assert "pw@" not in err
    assert sorted(p.name for p in in_tmp.iterdir()) == ["zoo.yaml"]  # no lightning_logs, no journal


def test_help_names_the_packaged_sweeps(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    out = capsys.readouterr().out
    assert "mnist_zoo" in out and "cifar10_lr_wd" in out and "--storage" in out


# -- one worker -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_trial_is_the_run_its_recorded_fit_command_makes(mnist_root, in_tmp, capsys):
    sweep = write_sweep(in_tmp)
    main(["sweep", str(sweep), *options(mnist_root)])
    out = capsys.readouterr().out
    folder = in_tmp / "lightning_logs" / "zoo"
    runs = {p.parent.name: p for p in folder.glob("*/version_*")}
    assert sorted(runs) == ["arch=lenet5_seed=0", "arch=mnist_cnn_seed=0"]
    run = runs["arch=mnist_cnn_seed=0"]  # the second trial of this process
    assert {"config.yaml", "run.yaml", "hparams.yaml", "model_summary.md", "report", "checkpoints"} <= {
        p.name for p in run.iterdir()
    }
    record = yaml.safe_load((run / TRIAL_FILE).read_text())
    assert record["state"] == "complete" and record["configuration"] == {"model.arch": "mnist_cnn"}
    assert record["seed"] == 0 and record["value"] == pytest.approx(max(val_acc(run)))
    # run.yaml's command is the trial's: the same run again as a plain cnnlab fit, logged elsewhere
    command = yaml.safe_load((run / "run.yaml").read_text())["command"]
    assert command[:2] == ["cnnlab", "fit"] and "--seed_everything" in command
    again = [*command[1:], "--trainer.logger.init_args.save_dir", "again"]
    main(again)
    assert val_acc(in_tmp / "again" / "arch=mnist_cnn_seed=0" / "version_0") == val_acc(run)
    # the sweep's table and its best configuration as a command that parses
    assert "## Sweep zoo: 2 configurations, 2 completed trials" in out
    records = [yaml.safe_load((r / TRIAL_FILE).read_text()) for r in runs.values()]
    winner = sorted(records, key=lambda r: (-r["value"], r["configuration"]["model.arch"]))[0]
    best = next(line.strip() for line in out.splitlines() if line.startswith("    cnnlab fit"))
    assert best.split()[1:] == winner["command"]
    CNNLabCLI(args=winner["command"], instantiate=False)
    # started again, a finished sweep runs nothing and says so
    capsys.readouterr()
    main(["sweep", str(sweep), *options(mnist_root)])
    out = capsys.readouterr().out
    assert "cnnlab sweep: zoo is finished (2 complete); nothing to run" in out
    assert len(list(folder.glob("*/version_*"))) == 2


@pytest.mark.slow
def test_a_search_samples_within_its_bounds_and_stops_at_n_trials(mnist_root, in_tmp, capsys):
    text = (
        "recipe: mnist_cnn\nsearch:\n  optimizer.init_args.lr: {low: 1.0e-4, high: 1.0e-2, log: true}\n"
        "  model.arch: {choices: [lenet5, mnist_cnn]}\nn_trials: 3\nseeds: [7]\npruner: none\n"
    )
    main(["sweep", str(write_sweep(in_tmp, text, "search")), *options(mnist_root)])
    trials = study_trials(in_tmp / "lightning_logs" / "search", "search")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    for trial in trials:
        assert 1e-4 <= trial.params["optimizer.init_args.lr"] <= 1e-2
        run = Path(trial.user_attrs["run"])
        assert run.parent.name == f"trial_{trial.number:03d}"
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["optimizer"]["init_args"]["lr"] == trial.params["optimizer.init_args.lr"]
        assert config["model"]["init_args"]["arch"] == trial.params["model.arch"]
        assert config["seed_everything"] == 7
    assert "## Sweep search: 3 configurations, 3 completed trials" in capsys.readouterr().out


# -- several workers ------------------------------------------------------------------------------------
def start_worker(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cnnlab.cli", "sweep", *args],
        cwd=cwd,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_two_workers_on_one_journal_run_every_point_exactly_once(mnist_root, tmp_path):
    text = "recipe: mnist_cnn\ngrid:\n  model.arch: [lenet5, mnist_cnn]\nseeds: [0, 1, 2]\n"
    args = [str(write_sweep(tmp_path, text)), *options(mnist_root)]
    workers = [start_worker(args, tmp_path) for _ in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    folder = tmp_path / "lightning_logs" / "zoo"
    trials = study_trials(folder)
    done = sorted(t.system_attrs[POINT] for t in trials if t.state == TrialState.COMPLETE)
    expected = sorted(f"arch={a}_seed={s}" for a in ("lenet5", "mnist_cnn") for s in (0, 1, 2))
    assert done == expected  # each point once
    assert sorted(f"{p.parent.name}/{p.name}" for p in folder.glob("*/version_*")) == [
        f"{name}/version_0" for name in expected
    ]
    ran = [sum(line.startswith("cnnlab sweep: trial") and " complete:" in line for line in o.splitlines())
           for o in outputs]  # fmt: skip
    assert sum(ran) == 6


@pytest.mark.slow
def test_the_trial_of_a_killed_worker_is_failed_and_run_again(mnist_root, tmp_path, capsys):
    sweep = write_sweep(tmp_path)
    folder = tmp_path / "lightning_logs" / "zoo"
    # a worker whose first trial would take long, killed while it trains
    slow = start_worker([str(sweep), *options(mnist_root, epochs=10000)], tmp_path)
    first = folder / "arch=lenet5_seed=0" / "version_0"
    deadline = time.time() + 300
    while not list(first.glob("events.out.tfevents.*")) or not list((first / "checkpoints").glob("*.ckpt")):
        assert slow.poll() is None and time.time() < deadline, slow.stdout.read()[-2000:]
        time.sleep(0.5)
    os.kill(slow.pid, signal.SIGKILL)
    slow.wait()
    assert [t.state for t in study_trials(folder)] == [TrialState.RUNNING]  # left behind by the kill
    # a later worker finds it, marks it failed and runs its point again
    later = run_child(["sweep", str(sweep), *options(mnist_root)], tmp_path, timeout=600)
    assert later.returncode == 0, later.stderr[-2000:]
    assert f"trial 0 marked failed: its worker (pid {slow.pid} on " in later.stdout
    trials = study_trials(folder)
    assert [(t.system_attrs[POINT], t.state) for t in trials] == [
        ("arch=lenet5_seed=0", TrialState.FAIL),
        ("arch=lenet5_seed=0", TrialState.COMPLETE),
        ("arch=mnist_cnn_seed=0", TrialState.COMPLETE),
    ]
    assert "is gone" in trials[0].system_attrs[STALE]
    assert yaml.safe_load((first / TRIAL_FILE).read_text())["state"] == "running"  # the killed attempt
    rerun = folder / "arch=lenet5_seed=0" / "version_1"
    assert yaml.safe_load((rerun / TRIAL_FILE).read_text())["state"] == "complete"
    # the report counts the completed trial only
    main(["report", str(folder)])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "arch=lenet5 " in line and line.startswith("|"))
    assert [c.strip() for c in row.strip("|").split("|")][2] == "1"
