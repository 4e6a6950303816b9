import csv
import sys
from types import SimpleNamespace

import pytest
import torch
from torchmetrics.functional.classification import (
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from cnnlab.callbacks.evaluation_report import EvaluationReport
from cnnlab.lightning_cli import CNNLabCLI
from tests.cli_args import QUIET, on_data, recipe

# 3 classes, 10 images in two batches: class 2 is never predicted, class 1 is over-predicted.
TARGET = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 1])
PREDICTED = torch.tensor([0, 1, 0, 1, 1, 1, 0, 1, 1, 1])
NAMES = ["cat", "dog", "bird"]


def one_hot_logits(predicted: torch.Tensor, num_classes: int = 3) -> torch.Tensor:
    return torch.nn.functional.one_hot(predicted, num_classes).float() * 5.0


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])


def run_report(tmp_path) -> EvaluationReport:
    """The callback's test hooks over two batches, as a test loop calls them."""
    report = EvaluationReport(print_report=False)
    trainer = SimpleNamespace(is_global_zero=True, fast_dev_run=False, log_dir=str(tmp_path))
    module = SimpleNamespace(hparams={"class_names": NAMES})
    report.on_test_epoch_start(trainer, module)
    for idx, part in enumerate((slice(0, 6), slice(6, 10))):
        batch = (torch.zeros(len(TARGET[part]), 1, 2, 2), TARGET[part])
        report.on_test_batch_end(trainer, module, one_hot_logits(PREDICTED[part]), batch, idx)
    report.on_test_epoch_end(trainer, module)
    return report


def test_report_numbers_are_torchmetrics_per_class_macro_and_weighted(tmp_path):
    rows = {r["class"]: r for r in run_report(tmp_path).rows}
    assert list(rows) == [*NAMES, "macro avg", "weighted avg"]
    for name, fn in (
        ("precision", multiclass_precision),
        ("recall", multiclass_recall),
        ("f1", multiclass_f1_score),
    ):
        per_class = fn(PREDICTED, TARGET, 3, average=None)
        for i, cls in enumerate(NAMES):
            assert rows[cls][name] == pytest.approx(float(per_class[i]))
        for kind in ("macro", "weighted"):
            assert rows[f"{kind} avg"][name] == pytest.approx(float(fn(PREDICTED, TARGET, 3, average=kind)))
    # By hand: dog is predicted 7 times, 3 rightly; bird never, so its precision and recall are 0.
    assert rows["dog"]["precision"] == pytest.approx(3 / 7)
    assert rows["bird"]["recall"] == 0.0
    assert [rows[c]["support"] for c in NAMES] == [3, 3, 4]
    assert rows["weighted avg"]["accuracy"] == pytest.approx(5 / 10)  # overall accuracy


def test_report_files_hold_the_table_and_the_confusion_matrix(tmp_path):
    report = run_report(tmp_path)
    folder = tmp_path / "report"
    with open(folder / "confusion_matrix.csv") as f:
        matrix = list(csv.reader(f))
    assert matrix[0] == ["true \\ predicted", *NAMES]
    assert matrix[1:] == [["cat", "2", "1", "0"], ["dog", "0", "3", "0"], ["bird", "1", "3", "0"]]
    with open(folder / "test_report.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["class"] for r in table] == [r["class"] for r in report.rows]
    assert float(table[0]["precision"]) == pytest.approx(report.rows[0]["precision"], abs=1e-6)
    markdown = (folder / "test_report.md").read_text()
    assert "| **macro avg** |" in markdown and "| bird |" in markdown
    assert (folder / "confusion_matrix.png").stat().st_size > 5000


@pytest.mark.slow
def test_fit_prints_and_saves_the_report_in_the_run_folder(mnist_root, in_tmp, capsys):
    data = on_data(mnist_root, batch_size=50)
    cli = CNNLabCLI(args=["fit", *recipe("mnist_lenet5"), *data, "--trainer.max_epochs", "1", *QUIET])
    folder = in_tmp / "lightning_logs" / "mnist_lenet5" / "version_0" / "report"
    assert sorted(p.name for p in folder.iterdir()) == [
        "confusion_matrix.csv",
        "confusion_matrix.png",
        "test_report.csv",
        "test_report.md",
    ]
    with open(folder / "test_report.csv") as f:
        table = {r["class"]: r for r in csv.DictReader(f)}
    assert list(table) == [str(d) for d in range(10)] + ["macro avg", "weighted avg"]
    assert int(table["weighted avg"]["support"]) == 100  # every test image
    test_acc = float(cli.trainer.callback_metrics["test/acc"])
    assert float(table["weighted avg"]["accuracy"]) == pytest.approx(test_acc, abs=1e-5)
    printed = capsys.readouterr().out
    assert "Test report (100 images)" in printed and "weighted avg" in printed
