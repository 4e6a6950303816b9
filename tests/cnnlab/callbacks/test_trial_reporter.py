from types import SimpleNamespace

import optuna
import pytest
import torch

from cnnlab.callbacks.trial_reporter import TrialReporter
from cnnlab.errors import UserError


class FakeTrial:
    """An Optuna trial's reporting side; its pruner says stop from the ``prune_from``-th report on."""

    def __init__(self, prune_from: int | None = None):
        self.reported, self.prune_from = [], prune_from

    def report(self, value, step):
        self.reported.append((step, value))

    def should_prune(self):
        return self.prune_from is not None and len(self.reported) >= self.prune_from


def trainer(epoch: int, metrics: dict, sanity: bool = False):
    return SimpleNamespace(
        sanity_checking=sanity,
        state=SimpleNamespace(fn="fit"),
        current_epoch=epoch,
        callback_metrics={k: torch.tensor(v) for k, v in metrics.items()},
    )


@pytest.mark.parametrize("direction, best", [("maximize", 0.75), ("minimize", 0.25)])
def test_each_validation_epoch_is_reported_and_the_best_kept(direction, best):
    trial = FakeTrial()
    reporter = TrialReporter(trial, "val/acc", direction)
    reporter.on_fit_start(None, None)
    reporter.on_validation_end(trainer(0, {"val/acc": 0.9}, sanity=True), None)  # the sanity check: no epoch
    for epoch, value in enumerate([0.25, 0.75, 0.5]):
        reporter.on_validation_end(trainer(epoch, {"val/acc": value}), None)
    assert trial.reported == [(0, 0.25), (1, 0.75), (2, 0.5)]
    assert reporter.best == best and reporter.seconds is not None


def test_a_trial_the_pruner_calls_hopeless_stops_with_trial_pruned():
    trial = FakeTrial(prune_from=2)
    reporter = TrialReporter(trial, "val/loss", "minimize")
    reporter.on_validation_end(trainer(0, {"val/loss": 2.0}), None)
    with pytest.raises(optuna.TrialPruned, match="val/loss 1.5 at epoch 2"):
        reporter.on_validation_end(trainer(1, {"val/loss": 1.5}), None)
    assert reporter.values == [2.0, 1.5]


def test_a_metric_that_is_not_logged_is_one_user_error_naming_those_that_are():
    reporter = TrialReporter(FakeTrial(), "val/accuracy")
    with pytest.raises(UserError, match="val/accuracy was not logged .*choose one of: val/acc, val/loss"):
        reporter.on_validation_end(trainer(0, {"val/acc": 0.5, "val/loss": 1.0, "train/loss": 1.0}), None)


def test_non_finite_values_are_no_best():
    reporter = TrialReporter(FakeTrial())
    reporter.on_validation_end(trainer(0, {"val/acc": float("nan")}), None)
    assert reporter.best is None
