"""``PredictionWriter``: what ``cnnlab predict`` writes.

    cnnlab predict --ckpt_path CKPT --data.predict_dir FOLDER

The data module reads the files (``--data.predict_dir``, see ``datamodules/predict.py``) and
normalises them as the checkpoint's training data was; ``ImageClassifier.predict_step`` gives the class
probabilities; ``PredictionWriter`` (``--prediction.*`` options) writes them to a CSV file in the run's
folder and prints the first rows.
"""

import csv
import sys
from pathlib import Path

from lightning.pytorch.callbacks import BasePredictionWriter

from cnnlab.errors import writable_folder
from cnnlab.tables import csv_cell, markdown_table


class PredictionWriter(BasePredictionWriter):
    """Writes one CSV row per image: path, predicted class, its probability and the top five classes
    as ``name:probability`` pairs separated by ``;``. Class names come from the checkpoint.

    Args:
        output: CSV file to write; default ``predictions.csv`` in the run's folder (with several
            processes, each writes its own ``predictions-rank<N>.csv``).
        show: rows printed when prediction ends (0 for none).
    """

    def __init__(self, output: str | None = None, show: int = 20):
        super().__init__(write_interval="batch")
        self.output, self.show = output, show
        self.path: Path | None = None
        self._file = self._csv = None
        self._rows: list[list[str]] = []
        self._count = 0

    def on_predict_start(self, trainer, pl_module) -> None:
        self.names = class_names(pl_module)
        path = Path(self.output) if self.output else Path(trainer.log_dir or ".") / "predictions.csv"
        if trainer.world_size > 1:
            path = path.with_name(f"{path.stem}-rank{trainer.global_rank}{path.suffix}")
        writable_folder(path.parent, "--prediction.output")
        self.path, self._rows, self._count = path, [], 0
        self._file = path.open("w", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(["path", "predicted", "probability", "top5"])

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dl_idx):
        paths = batch[1]
        top_probs, top_classes = prediction["top_probs"].tolist(), prediction["top_classes"].tolist()
        for path, probs, classes in zip(paths, top_probs, top_classes, strict=True):
            top5 = ";".join(f"{self._name(c)}:{p:.6f}" for c, p in zip(classes, probs, strict=True))
            row = [path, self._name(classes[0]), f"{probs[0]:.6f}", top5]
            self._csv.writerow([csv_cell(c) for c in row])
            if len(self._rows) < self.show:
                self._rows.append(row)
            self._count += 1

    def _name(self, index: int) -> str:
        return self.names[index] if index < len(self.names) else str(index)

    def on_predict_end(self, trainer, pl_module) -> None:
        self._close()
        if self._rows:
            rows = [[r[0], r[1], f"{float(r[2]):.3f}", r[3].replace(";", " ")] for r in self._rows]
            print(markdown_table(["path", "predicted", "probability", "top 5"], rows, "llrl"))
            if self._count > len(self._rows):
                print(f"... {self._count - len(self._rows)} more")
        print(f"{self._count} predictions written to {self.path}")

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._close()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def class_names(pl_module) -> list[str]:
    """The model's ``class_names`` hyperparameter (the checkpoint's, with ``--ckpt_path``), else none."""
    names = getattr(pl_module, "hparams", {}).get("class_names")
    if not names:
        print("cnnlab: the checkpoint names no classes; printing class numbers", file=sys.stderr)
    return list(names or [])
