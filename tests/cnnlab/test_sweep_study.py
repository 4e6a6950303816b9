"""Claims, liveness and storages of a sweep's study, on journal files in a temporary folder."""

import multiprocessing
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from cnnlab import sweep_study
from cnnlab.errors import UserError
from cnnlab.sweep_file import parse
from cnnlab.sweep_study import HEARTBEAT, POINT, STALE, WITHDRAWN, WORKER, SweepStudy, open_storage

GRID = {"recipe": "mnist_cnn", "grid": {"model.arch": ["lenet5", "simplecnn"]}, "seeds": [0, 1, 2]}


def grid_study(folder, name="zoo", definition=GRID):
    sweep = parse(definition, folder / f"{name}.yaml")
    return SweepStudy(open_storage(None, folder), name, sweep), sweep.points()


def finish(study, trial):
    study.study.tell(trial, 0.5)


def test_claims_take_the_points_in_order_and_the_study_knows_when_it_is_done(tmp_path):
    study, points = grid_study(tmp_path)
    assert (tmp_path / sweep_study.JOURNAL).is_file()
    taken = []
    while (claimed := study.claim_point(points)) is not None:
        trial, point = claimed
        assert trial.params == {"model.arch": point.config["model.arch"], "seed": point.seed}
        taken.append(point.name)
        assert not study.finished(points)
        finish(study, trial)
    assert taken == [p.name for p in points]
    assert study.finished(points) and study.counts() == {
        "complete": 6,
        "pruned": 0,
        "running": 0,
        "failed": 0,
    }


def test_a_second_worker_skips_the_points_that_are_running(tmp_path):
    first, points = grid_study(tmp_path)
    second, _ = grid_study(tmp_path)  # another process's view of the same journal
    a, _ = first.claim_point(points)
    b, point = second.claim_point(points)
    assert point == points[1] and a.number < b.number


def test_of_two_simultaneous_claims_on_one_point_the_later_withdraws(tmp_path, monkeypatch):
    first, points = grid_study(tmp_path)
    second, _ = grid_study(tmp_path)
    stale_view = second.trials()  # before the first worker's claim
    first.claim_point(points)
    # the second worker read the trials before the first worker's claim was written
    real = SweepStudy.trials
    views = iter([stale_view, stale_view])  # fail_stale and the choice of a point
    monkeypatch.setattr(
        SweepStudy, "trials", lambda self: next(views) if views.__length_hint__() else real(self)
    )
    trial, point = second.claim_point(points)
    assert point == points[1]
    states = [(t.system_attrs[POINT], t.state, t.system_attrs.get(WITHDRAWN)) for t in real(second)]
    assert states == [
        (points[0].name, TrialState.RUNNING, None),
        (points[0].name, TrialState.FAIL, True),  # the second worker's claim, withdrawn
        (points[1].name, TrialState.RUNNING, None),
    ]
    assert second.counts()["failed"] == 0  # withdrawn claims are no failures


def _set_worker(study, trial, **worker):
    trial_id = study.trial_id(trial)
    study.storage.set_trial_system_attr(trial_id, WORKER, {**study.me, **worker})


def test_a_trial_whose_process_is_gone_is_failed_and_its_point_claimed_again(tmp_path):
    study, points = grid_study(tmp_path)
    trial, point = study.claim_point(points)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    _set_worker(study, trial, pid=int(dead.stdout), start=None)  # a worker of this machine, ended
    again, same = study.claim_point(points)
    assert same == point and again.number > trial.number
    assert study.reclaimed == [
        (trial.number, f"its worker (pid {int(dead.stdout)} on {study.me['host']}) is gone")
    ]
    old = study.storage.get_trial(study.trial_id(trial))
    assert old.state == TrialState.FAIL and "is gone" in old.system_attrs[STALE]


def test_a_silent_worker_elsewhere_is_failed_after_the_grace_period_a_live_one_is_not(tmp_path):
    study, points = grid_study(tmp_path)
    silent, _ = study.claim_point(points)
    live, _ = study.claim_point(points)
    for trial, age in ((silent, sweep_study.GRACE_S + 5), (live, sweep_study.GRACE_S - 30)):
        _set_worker(study, trial, host="elsewhere", pid=1)
        study.storage.set_trial_system_attr(study.trial_id(trial), HEARTBEAT, time.time() - age)
    failed = study.fail_stale()
    assert [number for number, _ in failed] == [silent.number]
    assert "no heartbeat from its worker (pid 1 on elsewhere)" in failed[0][1]


def test_the_heartbeat_is_recorded_while_a_trial_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_study, "HEARTBEAT_S", 0.05)
    study, points = grid_study(tmp_path)
    trial, _ = study.claim_point(points)
    trial_id = study.trial_id(trial)
    before = study.storage.get_trial(trial_id).system_attrs[HEARTBEAT]
    with study.heartbeat(trial_id):
        time.sleep(0.3)
    assert study.storage.get_trial(trial_id).system_attrs[HEARTBEAT] > before


def test_a_search_claims_no_more_than_n_trials(tmp_path):
    definition = {
        "recipe": "mnist_cnn",
        "search": {"optimizer.lr": {"low": 0.001, "high": 0.1}},
        "n_trials": 2,
    }
    sweep = parse(definition, tmp_path / "s.yaml")
    study = SweepStudy(open_storage(None, tmp_path), "s", sweep)
    trials = [study.claim_search(), study.claim_search()]
    assert all(trials) and study.claim_search() is None
    study.study.tell(trials[0], 0.5)
    study.study.tell(trials[1], state=TrialState.FAIL)  # a failed trial's place is free again
    assert study.claim_search() is not None


def test_a_study_refuses_a_different_sweep(tmp_path):
    grid_study(tmp_path)
    changed = {**GRID, "seeds": [0, 1]}
    with pytest.raises(UserError, match="study zoo holds a different sweep .its seeds differ"):
        grid_study(tmp_path, definition=changed)


@pytest.mark.parametrize(
    "url, message",
    [
        ("sqlite:////no/such/folder/s.db", "cannot open storage sqlite:////no/such/folder/s.db"),
        ("postgresql://me:secret@127.0.0.1:1/db", "postgresql://me:***@127.0.0.1:1/db"),
        ("redis://localhost", "cnnlab takes postgresql://, mysql:// or sqlite:/// URLs"),
    ],
)
def test_a_storage_that_cannot_be_opened_is_one_line_without_the_password(url, message, tmp_path):
    with pytest.raises(UserError, match=message.replace("*", r"\*").replace("?", r"\?")) as err:
        open_storage(url, tmp_path)
    assert "secret" not in str(err.value) and "\n" not in str(err.value)


def _claim_all(folder, results):
    study, points = grid_study(folder)
    while (claimed := study.claim_point(points)) is not None:
        trial, point = claimed
        results.put(point.name)
        finish(study, trial)


@pytest.mark.slow  # starts processes
def test_eight_processes_claiming_at_once_complete_every_point_exactly_once(tmp_path):
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=_claim_all, args=(tmp_path, results)) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert all(w.exitcode == 0 for w in workers)
    claimed = [results.get(timeout=5) for _ in range(results.qsize())]
    study = optuna.load_study(study_name="zoo", storage=open_storage(None, tmp_path))
    done = sorted(t.system_attrs[POINT] for t in study.trials if t.state == TrialState.COMPLETE)
    points = grid_study(tmp_path)[1]
    assert done == sorted(p.name for p in points) and sorted(claimed) == done
