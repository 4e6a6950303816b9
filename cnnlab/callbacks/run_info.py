"""``run.yaml`` beside ``config.yaml`` in every run folder: what is needed to reproduce the run.

LightningCLI already writes the resolved config (``config.yaml``); ``RunInfo`` adds the command line,
start time, seed, the git commit of the code (and whether the tree had uncommitted changes), the
versions of Python and the main packages, and the device.
"""

import datetime
import os
import sys
from pathlib import Path

import lightning as L
import yaml

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
        Path(folder).mkdir(parents=True, exist_ok=True)
        name = "run.yaml" if stage == "fit" else f"run_{stage}.yaml"
        (Path(folder) / name).write_text(yaml.safe_dump(info, sort_keys=False))
