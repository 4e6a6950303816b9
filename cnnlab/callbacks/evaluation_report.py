"""``EvaluationReport``: per-class precision, recall, F1 and accuracy, and the confusion matrix, of a test.

At the end of every test (``cnnlab test``, and the test of the best checkpoint after ``cnnlab fit``) the
report is printed and saved in the run's folder (``trainer.log_dir``, e.g.
``lightning_logs/mnist_lenet5/version_0/report/``):

* ``test_report.csv`` and ``test_report.md``: one row per class, then the macro and weighted averages;
* ``confusion_matrix.csv`` (rows: true class, columns: predicted class, headed by the class names) and
  ``confusion_matrix.png``.

All numbers come from torchmetrics, accumulated over the whole test set (and synchronised across
processes under DDP). Per class, torchmetrics' accuracy is the share of that class's images classified
correctly, the same number as its recall; the weighted average of accuracy is the overall accuracy.
"""

from pathlib import Path

import lightning as L
import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from cnnlab.plots import confusion_matrix_figure, save_png
from cnnlab.tables import markdown_cell, write_csv

COLUMNS = ("precision", "recall", "f1", "accuracy")
AVERAGES = {"per_class": None, "macro avg": "macro", "weighted avg": "weighted"}
_METRICS = {
    "precision": MulticlassPrecision,
    "recall": MulticlassRecall,
    "f1": MulticlassF1Score,
    "accuracy": MulticlassAccuracy,
}


def report_metrics(num_classes: int) -> MetricCollection:
    """Every column of the report for every kind of average, plus the confusion matrix.

    The metrics share one set of per-class counts (MetricCollection's compute groups, named explicitly:
    torchmetrics would otherwise guess them from the states after the first batch), so an update costs
    about two confusion-matrix updates.
    """
    metrics = {
        f"{name}/{kind}": cls(num_classes, average=average, validate_args=False)
        for name, cls in _METRICS.items()
        for kind, average in AVERAGES.items()
    }
    groups = [list(metrics), ["confusion_matrix"]]  # all but the matrix count the same tp, fp, tn, fn
    metrics["confusion_matrix"] = MulticlassConfusionMatrix(num_classes, validate_args=False)
    return MetricCollection(metrics, compute_groups=groups)


def class_names_of(pl_module: L.LightningModule, num_classes: int) -> list[str]:
    """The model's ``class_names`` hyperparameter (linked from the data module), else the indices."""
    names = getattr(pl_module, "hparams", {}).get("class_names")
    if names and len(names) == num_classes:
        return [str(n) for n in names]
    return [str(i) for i in range(num_classes)]


def report_rows(values: dict[str, torch.Tensor], class_names: list[str]) -> list[dict]:
    """Rows of the report from ``report_metrics(...).compute()``: classes, then macro and weighted."""
    support = values["confusion_matrix"].sum(dim=1).tolist()
    rows = []
    for i, name in enumerate(class_names):
        row = {"class": name}
        row.update({c: float(values[f"{c}/per_class"][i]) for c in COLUMNS})
        rows.append({**row, "support": int(support[i])})
    for kind in ("macro avg", "weighted avg"):
        row = {"class": kind, **{c: float(values[f"{c}/{kind}"]) for c in COLUMNS}}
        rows.append({**row, "support": int(sum(support))})
    return rows


def format_table(rows: list[dict]) -> str:
    """The report as aligned plain text, averages set apart by a blank line."""
    rows = [{**r, "class": " ".join(str(r["class"]).split())} for r in rows]  # a name's line breaks: spaces
    width = max(12, *(len(r["class"]) for r in rows))
    header = f"{'class':<{width}}" + "".join(f"{c:>11}" for c in COLUMNS) + f"{'support':>10}"
    lines = [header]
    for row in rows:
        if row["class"] == "macro avg":
            lines.append("")
        cells = "".join(f"{row[c]:>11.4f}" for c in COLUMNS)
        lines.append(f"{row['class']:<{width}}{cells}{row['support']:>10d}")
    return "\n".join(lines)


def format_markdown(rows: list[dict]) -> str:
    header = "| class | " + " | ".join(COLUMNS) + " | support |"
    lines = [header, "|---" + "|---:" * (len(COLUMNS) + 1) + "|"]
    for row in rows:
        name = f"**{row['class']}**" if row["class"] in ("macro avg", "weighted avg") else row["class"]
        name = markdown_cell(name)
        cells = " | ".join(f"{row[c]:.4f}" for c in COLUMNS)
        lines.append(f"| {name} | {cells} | {row['support']} |")
    return "\n".join(lines) + "\n"


def write_report(folder: Path, rows: list[dict], matrix: torch.Tensor, class_names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    columns = ["class", *COLUMNS, "support"]
    write_csv(
        folder / "test_report.csv",
        columns,
        ([r["class"], *(f"{r[c]:.6f}" for c in COLUMNS), r["support"]] for r in rows),
    )
    (folder / "test_report.md").write_text(format_markdown(rows))
    write_csv(
        folder / "confusion_matrix.csv",
        ["true \\ predicted", *class_names],
        ([name, *counts] for name, counts in zip(class_names, matrix.tolist(), strict=True)),
    )
    save_png(
        confusion_matrix_figure(matrix, class_names, title="test confusion matrix"),
        folder / "confusion_matrix.png",
    )


class EvaluationReport(L.Callback):
    """Prints and saves the per-class test report and the confusion matrix at the end of each test.

    Args:
        folder: sub-folder of the run's folder (``trainer.log_dir``) the files go to.
        print_report: print the table to the terminal.

    After a test, ``rows`` holds the report (dicts with class, precision, recall, f1, accuracy, support)
    and ``confusion_matrix`` the counts (true class x predicted class).
    """

    def __init__(self, folder: str = "report", print_report: bool = True):
        self.folder = folder
        self.print_report = print_report
        self.rows: list[dict] = []
        self.confusion_matrix: torch.Tensor | None = None
        self._metrics: MetricCollection | None = None

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self._metrics = None  # made at the first batch, when the number of classes is known

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        # ImageClassifier's test_step returns its logits; any other module is run once more.
        if isinstance(outputs, torch.Tensor):
            logits = outputs.detach()
        else:
            with torch.no_grad():
                logits = pl_module(batch[0])
        if self._metrics is None:
            self._metrics = report_metrics(logits.shape[1]).to(logits.device)
        self._metrics.update(logits.argmax(dim=1), batch[1])

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        if self._metrics is None:
            return
        values = self._metrics.compute()  # synchronised across processes
        self._metrics.reset()
        matrix = values["confusion_matrix"].cpu()
        class_names = class_names_of(pl_module, len(matrix))
        self.rows, self.confusion_matrix = report_rows(values, class_names), matrix
        folder = trainer.log_dir  # broadcasts from rank zero: every process must ask, before the rank test
        if not trainer.is_global_zero:
            return
        if self.print_report:
            print(f"\nTest report ({int(matrix.sum())} images):\n{format_table(self.rows)}\n", flush=True)
        if not trainer.fast_dev_run:  # like checkpoints, no files from a fast_dev_run
            write_report(Path(folder) / self.folder, self.rows, matrix, class_names)
