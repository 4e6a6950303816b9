"""The Optuna side of ``cnnlab sweep``: where the study lives, how workers share it, who is alive.

* **Storage**: by default a journal file in the sweep's log folder (Optuna's ``JournalFileBackend``:
  processes on one machine append to it under a file lock and replay it); ``--storage URL`` names an
  RDB (``postgresql://``, ``mysql://``, ``sqlite:///``) that workers on many machines share.
* **Claims**: a grid trial is claimed by creating an Optuna trial, already running, that names its point;
  Optuna numbers trials in the order they were created, so when two workers claim the same point at
  once, the one with the lower number keeps it and the other withdraws its claim (a failed trial marked
  ``cnnlab:withdrawn``) and claims the next point. A search trial is claimed the same way: the
  ``n_trials`` lowest-numbered trials that are running or done are the search's.
* **Liveness**: a running trial records its worker (host, boot, process and its start time) and a
  heartbeat every ``HEARTBEAT_S`` seconds. Before claiming, a worker marks failed every running trial
  whose worker is gone (same machine: the process no longer exists) or silent for ``GRACE_S`` seconds
  (any machine; clocks must agree within a minute), so its point is claimed and run again.

Optuna's own heartbeat (``RDBStorage(heartbeat_interval=...)``) exists only for RDB storages, not for
the journal file, so cnnlab keeps its own, the same for both.
"""

import json
import os
import re
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from cnnlab.errors import UserError
from cnnlab.sweep_file import Point, Sweep

JOURNAL = "optuna_journal.log"
HEARTBEAT_S = 30.0
GRACE_S = 150.0
POINT, WORKER, HEARTBEAT = "cnnlab:point", "cnnlab:worker", "cnnlab:heartbeat"
WITHDRAWN, STALE = "cnnlab:withdrawn", "cnnlab:stale"
SWEEP_ATTR = "cnnlab:sweep"
# States that hold a point (or a search slot): running now, or done
HOLDING = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
DONE = (TrialState.COMPLETE, TrialState.PRUNED)
RDB_SCHEMES = ("postgresql", "mysql", "sqlite")

optuna.logging.set_verbosity(optuna.logging.WARNING)  # cnnlab prints its own line per trial


# -- storage --------------------------------------------------------------------------------------------
def redact(url: str) -> str:
    """A storage URL without its password."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def open_storage(url: str | None, folder: Path):
    """The journal file ``folder/optuna_journal.log`` (or the file ``url``), or the RDB at ``url``."""
    if url is None or "://" not in url:
        path = Path(url).expanduser() if url else folder / JOURNAL
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a"):
                pass
        except OSError as err:
            raise UserError(f"cannot write the sweep's journal {path} ({err.strerror or err})") from err
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(path)))
    scheme = url.split("://", 1)[0].split("+", 1)[0]
    if scheme not in RDB_SCHEMES:
        raise UserError(
            f"storage {redact(url)}: cnnlab takes postgresql://, mysql:// or sqlite:/// URLs, or a journal "
            "file's path"
        )
    # a database that does not answer fails in seconds, not after the system's TCP timeout
    connect = {"connect_timeout": 10} if scheme in ("postgresql", "mysql") else {}
    try:
        return optuna.storages.RDBStorage(_with_driver(url), engine_kwargs={"connect_args": connect})
    except ImportError as err:
        driver = {
            "postgresql": '"cnnlab[postgres]" (psycopg 3)',
            "mysql": "PyMySQL (and a mysql+pymysql:// URL)",
        }
        raise UserError(
            f"storage {redact(url)} needs a database driver that is not installed ({err}); "
            f"pip install {driver.get(scheme, 'the driver')}"
        ) from err
    except Exception as err:  # sqlalchemy's errors: refused, unknown host, bad password, no such file
        reason = " ".join(str(err).split("\n")[0].split()) or type(err).__name__
        raise UserError(f"cannot open storage {redact(url)}: {reason[:300]}") from err


def _with_driver(url: str) -> str:
    """``postgresql://`` with the PostgreSQL driver that is installed: SQLAlchemy 2.0 takes psycopg2 for
    a bare ``postgresql://``, 2.1 psycopg (3); a URL that names its driver is kept."""
    import importlib.util

    if not url.startswith("postgresql://"):
        return url
    for module in ("psycopg", "psycopg2"):
        if importlib.util.find_spec(module) is not None:
            return url.replace("postgresql://", f"postgresql+{module}://", 1)
    return url


# -- the study ------------------------------------------------------------------------------------------
def _this_process() -> dict:
    return {
        "host": socket.gethostname(),
        "boot": _read("/proc/sys/kernel/random/boot_id"),
        "pid": os.getpid(),
        "start": _process_start(os.getpid()),
    }


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, Linux), or None where /proc cannot say."""
    stat = _read(f"/proc/{pid}/stat")
    return stat.rpartition(")")[2].split()[19] if stat else None


def _gone(worker: dict) -> bool:
    """Whether the worker process ``worker`` (recorded on this machine) no longer exists."""
    pid = worker.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, another user's
    start = _process_start(pid)
    return worker.get("start") is not None and start is not None and start != worker["start"]  # pid reused


class SweepStudy:
    """A sweep's Optuna study, and this worker's claims on it."""

    def __init__(self, storage, name: str, sweep: Sweep):
        self.storage, self.sweep = storage, sweep
        from optuna.pruners import MedianPruner, NopPruner
        from optuna.samplers import RandomSampler, TPESampler

        pruner = (
            MedianPruner(n_startup_trials=5, n_warmup_steps=1) if sweep.pruner == "median" else NopPruner()
        )
        sampler = TPESampler() if sweep.sampler == "tpe" else RandomSampler()
        self.study = optuna.create_study(
            storage=storage,
            study_name=name,
            direction=sweep.direction,
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )
        self.study_id = storage.get_study_id_from_name(name)
        recorded = self.study.user_attrs.get(SWEEP_ATTR)
        if recorded is None:
            self.study.set_user_attr(SWEEP_ATTR, sweep.definition)
        elif recorded != sweep.definition:
            changed = sorted(
                k for k in {*recorded, *sweep.definition} if recorded.get(k) != sweep.definition.get(k)
            )
            raise UserError(
                f"study {name} holds a different sweep (its {', '.join(changed)} differ from "
                f"{sweep.path}); start it under another name with --study NAME"
            )
        self.me = _this_process()
        self.reclaimed: list[tuple[int, str]] = []  # (number, why) of the trials fail_stale marked failed

    @property
    def name(self) -> str:
        return self.study.study_name

    def trials(self):
        return self.storage.get_all_trials(self.study_id, deepcopy=False)

    def _id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def trial_id(self, trial) -> int:
        """The storage's id of an ``optuna.Trial`` (Optuna keeps it private)."""
        return self._id(trial.number)

    # -- liveness --------------------------------------------------------------------------------------
    def fail_stale(self) -> list[tuple[int, str]]:
        """Mark failed the running trials whose worker is gone or silent: (number, why) of each."""
        failed, now = [], time.time()
        for trial in self.trials():
            if trial.state != TrialState.RUNNING:
                continue
            why = self._stale(trial, now)
            if why is None:
                continue
            trial_id = self._id(trial.number)
            try:
                self.storage.set_trial_system_attr(trial_id, STALE, why)
                if not self.storage.set_trial_state_values(trial_id, TrialState.FAIL):
                    continue
            except (RuntimeError, ValueError):  # finished meanwhile (Optuna's UpdateFinishedTrialError)
                continue
            failed.append((trial.number, why))
        self.reclaimed += failed
        return failed

    def _stale(self, trial, now: float) -> str | None:
        worker = trial.system_attrs.get(WORKER) or {}
        where = f"pid {worker.get('pid')} on {worker.get('host')}"
        same_machine = worker.get("host") == self.me["host"] and worker.get("boot") == self.me["boot"]
        if same_machine and worker.get("pid") != self.me["pid"] and _gone(worker):
            return f"its worker ({where}) is gone"
        beat = trial.system_attrs.get(HEARTBEAT)
        if beat is None and trial.datetime_start is not None:
            beat = trial.datetime_start.timestamp()
        if beat is not None and now - beat > GRACE_S:
            return f"no heartbeat from its worker ({where}) for {now - beat:.0f} s"
        return None

    @contextmanager
    def heartbeat(self, trial_id: int):
        """Record a heartbeat for ``trial_id`` every ``HEARTBEAT_S`` seconds while the block runs."""
        stop = threading.Event()

        def beat():
            while not stop.wait(HEARTBEAT_S):
                try:
                    self.storage.set_trial_system_attr(trial_id, HEARTBEAT, time.time())
                except Exception:  # a storage hiccup, or the trial was failed meanwhile: try again later
                    pass

        thread = threading.Thread(target=beat, name="cnnlab-sweep-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _alive_attrs(self) -> dict:
        return {WORKER: self.me, HEARTBEAT: time.time()}

    def _withdraw(self, trial_id: int) -> None:
        self.storage.set_trial_system_attr(trial_id, WITHDRAWN, True)
        self.storage.set_trial_state_values(trial_id, TrialState.FAIL)

    # -- claims ----------------------------------------------------------------------------------------
    def claim_point(self, points: list[Point]):
        """(trial, point) for the first point no trial holds, claimed for this worker; None when every
        point is running or done."""
        choices = _grid_choices(self.sweep)
        while True:
            self.fail_stale()
            held = {t.system_attrs.get(POINT) for t in self.trials() if t.state in HOLDING}
            free = [p for p in points if p.name not in held]
            if not free:
                return None
            point = free[0]
            params = {k: _param(v) for k, v in point.config.items()}
            if point.seed is not None:
                params["seed"] = point.seed
            template = optuna.trial.create_trial(
                state=TrialState.RUNNING,
                params=params,
                distributions={k: CategoricalDistribution(choices[k]) for k in params},
                system_attrs={POINT: point.name, **self._alive_attrs()},
            )
            trial_id = self.storage.create_new_trial(self.study_id, template_trial=template)
            number = self.storage.get_trial(trial_id).number
            rivals = [
                t
                for t in self.trials()
                if t.system_attrs.get(POINT) == point.name and t.number < number and t.state in HOLDING
            ]
            if not rivals:
                return optuna.trial.Trial(self.study, trial_id), point
            self._withdraw(trial_id)  # another worker claimed it first

    def claim_search(self):
        """A new search trial for this worker, or None when ``n_trials`` are running or done."""
        self.fail_stale()
        if sum(t.state in HOLDING for t in self.trials()) >= self.sweep.n_trials:
            return None
        trial = self.study.ask()
        trial_id = self._id(trial.number)
        for key, value in self._alive_attrs().items():
            self.storage.set_trial_system_attr(trial_id, key, value)
        before = [t for t in self.trials() if t.state in HOLDING and t.number < trial.number]
        if len(before) >= self.sweep.n_trials:
            self._withdraw(trial_id)  # others took the last places meanwhile
            return None
        return trial

    # -- progress --------------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Trials by state; withdrawn claims are not counted."""
        counts = {"complete": 0, "pruned": 0, "running": 0, "failed": 0}
        names = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.RUNNING: "running"}
        for trial in self.trials():
            if trial.system_attrs.get(WITHDRAWN):
                continue
            key = names.get(trial.state, "failed" if trial.state == TrialState.FAIL else None)
            if key:
                counts[key] += 1
        return counts

    def finished(self, points: list[Point]) -> bool:
        """Whether every point (a grid) or ``n_trials`` trials (a search) are done."""
        trials = self.trials()
        if self.sweep.is_search:
            return sum(t.state in DONE for t in trials) >= self.sweep.n_trials
        done = {t.system_attrs.get(POINT) for t in trials if t.state in DONE}
        return all(p.name in done for p in points)

    def done_trials(self):
        return [t for t in self.trials() if t.state == TrialState.COMPLETE]


def _param(value):
    """A grid value as an Optuna parameter: lists and mappings as their JSON text."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value)


def _grid_choices(sweep: Sweep) -> dict[str, tuple]:
    choices = {k: tuple(_param(v) for v in values) for k, values in sweep.grid.items()}
    if sweep.seeds:
        choices["seed"] = tuple(sweep.seeds)
    return choices


def suggest(trial, key: str, dim):
    """The value of search dimension ``dim`` for ``trial``, sampled by the study's sampler."""
    if dim.kind == "categorical":
        return trial.suggest_categorical(key, list(dim.choices))
    if dim.kind == "int":
        return trial.suggest_int(key, dim.low, dim.high, step=dim.step or 1, log=dim.log)
    return trial.suggest_float(key, dim.low, dim.high, step=dim.step, log=dim.log)
