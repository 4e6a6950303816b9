"""``ModelSummaryFile``: the model card (``cnnlab.model_card``) of the model being trained, in the run's
folder as ``model_summary.md``."""

from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.seed import isolate_rng

from cnnlab.model_card import build_model, render, summarize


class ModelSummaryFile(L.Callback):
    """Writes the model card of the model being trained to ``<run folder>/model_summary.md`` at fit
    start (rank zero; nothing without a logger or in ``fast_dev_run``)."""

    filename = "model_summary.md"

    def on_fit_start(self, trainer, pl_module) -> None:
        # trainer.log_dir broadcasts from rank zero, so every process must ask for it, before the rank test.
        folder = trainer.log_dir if trainer.logger is not None else None
        if not trainer.is_global_zero or trainer.fast_dev_run or folder is None:
            return
        hp = pl_module.hparams
        shape = (hp.get("in_channels", 3), hp.get("image_size", 32), hp.get("image_size", 32))
        try:
            if "arch" in hp:  # a fresh copy: the trained one may be compiled, or on another device
                with isolate_rng():  # its initialisation must not move the run's random stream
                    model = build_model(
                        hp["arch"], hp.get("num_classes", 10), *shape[:2], hp.get("arch_kwargs")
                    )
            else:
                model = getattr(pl_module, "model", pl_module)
            text = render(summarize(model, shape, hp.get("arch", "")))
        except Exception as err:  # the card is a convenience: never stop a training run for it
            rank_zero_warn(f"no {self.filename}: {type(err).__name__}: {err}")
            return
        path = Path(folder) / self.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
