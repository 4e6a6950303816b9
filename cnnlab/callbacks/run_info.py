"""``run.yaml`` beside ``config.yaml`` in every run folder: what is needed to reproduce the run.

LightningCLI already writes the resolved config (``config.yaml``); ``RunInfo`` adds the command line,
the defaults file read, start time, seed, the git commit of the code (and whether the tree had
uncommitted changes), the versions of Python and the main packages, and the device. When Lightning's
learning-rate finder ran (``--trainer.callbacks+=LearningRateFinder``), its suggestion, which the run
trains with, is printed, logged as ``lr_finder/suggestion`` and added to ``run.yaml``.
"""

import datetime
import os
import sys
from pathlib import Path

import lightning as L
import yaml
from lightning.pytorch.callbacks import LearningRateFinder
from lightning.pytorch.utilities import rank_zero_info

from cnnlab.provenance import device_info, git_state, package_versions
from cnnlab.recipes import defaults_file


class RunInfo(L.Callback):
    """Writes ``run.yaml`` into the logger's run folder when fit (or test, validate, predict) starts."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        folder = trainer.log_dir
        if not trainer.is_global_zero or folder is None or trainer.logger is None or trainer.fast_dev_run:
            return  # fast_dev_run logs nowhere: its log_dir is the working directory
        seed = os.environ.get("PL_GLOBAL_SEED")
        stage = str(getattr(stage, "value", stage))  # Lightning passes a TrainerFn enum
        info = {
            "command": ["cnnlab", *sys.argv[1:]],
            "defaults": str(defaults_file()),
            "stage": stage,
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "seed": int(seed) if seed is not None else None,
            "git": git_state(),
            "packages": package_versions(),
            "device": device_info(trainer),
        }
        skipped = getattr(trainer.datamodule, "skipped", None) or {}
        if any(skipped.values()):  # files of the data set that could not be read, left out
            info["skipped_images"] = {split: len(files) for split, files in skipped.items() if files}
        Path(folder).mkdir(parents=True, exist_ok=True)
        name = "run.yaml" if stage == "fit" else f"run_{stage}.yaml"
        (Path(folder) / name).write_text(yaml.safe_dump(info, sort_keys=False))

    def on_train_start(self, trainer, pl_module) -> None:
        # after every callback's on_fit_start, where the learning-rate finder runs
        finders = [c for c in trainer.callbacks if isinstance(c, LearningRateFinder) and c.optimal_lr]
        suggestion = finders[-1].optimal_lr.suggestion() if finders else None
        if suggestion is None:
            return
        rank_zero_info(
            f"cnnlab: the learning-rate finder suggests lr {suggestion:.3g}; the run trains with it"
        )
        for logger in trainer.loggers:
            logger.log_metrics({"lr_finder/suggestion": suggestion}, step=trainer.global_step)
        path = Path(trainer.log_dir or "") / "run.yaml"
        if (
            trainer.is_global_zero
            and trainer.logger is not None
            and not trainer.fast_dev_run
            and path.is_file()
        ):
            info = yaml.safe_load(path.read_text())
            info["lr_finder"] = {"suggestion": float(suggestion)}
            path.write_text(yaml.safe_dump(info, sort_keys=False))
