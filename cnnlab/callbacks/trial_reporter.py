"""``TrialReporter``: a sweep trial's metric, epoch by epoch, to its Optuna trial and pruner.

``cnnlab sweep`` adds it to each trial's trainer (it needs the trial, so recipes do not name it). After
every validation epoch it reads the sweep's metric (``val/acc`` by default) from the logged metrics,
keeps its best value, reports it to the trial as the epoch's intermediate value, and asks the study's
pruner whether to go on; a hopeless trial ends with ``optuna.TrialPruned``, as optuna-integration's
``PyTorchLightningPruningCallback`` does. That callback (which does import ``lightning.pytorch``) is not
used: it needs a package of its own, only warns when the metric is missing, and keeps no best value.
"""

import math
import time

import lightning as L

from cnnlab.errors import UserError


class TrialReporter(L.Callback):
    """Report ``metric`` after each validation epoch to ``trial`` (``report``/``should_prune``)."""

    def __init__(self, trial, metric: str = "val/acc", direction: str = "maximize"):
        self.trial, self.metric, self.direction = trial, metric, direction
        self.values: list[float] = []
        self.seconds: float | None = None  # from fit's start to the last validation (as cnnlab report's)
        self._start = None

    def on_fit_start(self, trainer, pl_module) -> None:
        self._start = time.time()

    @property
    def best(self) -> float | None:
        finite = [v for v in self.values if math.isfinite(v)]
        if not finite:
            return None
        return max(finite) if self.direction == "maximize" else min(finite)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        value = trainer.callback_metrics.get(self.metric)
        if value is None:
            logged = ", ".join(sorted(k for k in trainer.callback_metrics if k.startswith("val")))
            raise UserError(
                f"the sweep's metric {self.metric} was not logged after validation; choose one of: {logged}"
            )
        value = float(value)
        self.values.append(value)
        self.seconds = time.time() - self._start if self._start is not None else None
        self.trial.report(value, step=trainer.current_epoch)
        if self.trial.should_prune():
            import optuna

            raise optuna.TrialPruned(
                f"{self.metric} {value:.4g} at epoch {trainer.current_epoch + 1} is worse than the median "
                "of earlier trials at that epoch"
            )
