"""Callbacks cnnlab adds to every run (see ``experiments/defaults.yaml``)."""

import time

import lightning as L
import torch


class EpochTimer(L.Callback):
    """Logs ``time/train_epoch_s`` and ``time/train_images_per_s`` for the training part of each epoch
    (validation excluded), and keeps them in ``epoch_seconds`` / ``images_per_second``."""

    def __init__(self):
        self.epoch_seconds: list[float] = []
        self.images_per_second: list[float] = []
        self._start = self._end = None
        self._images = 0

    @staticmethod
    def _now(trainer: L.Trainer) -> float:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()  # once per epoch: queued kernels belong to the epoch
        return time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start, self._end, self._images = self._now(trainer), None, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._images += len(batch[-1])

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        if trainer.state.fn == "fit" and self._start is not None and self._end is None:
            self._end = self._now(trainer)  # validation inside the epoch is not training time

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._start is None:
            return
        seconds = (self._end or self._now(trainer)) - self._start
        self.epoch_seconds.append(seconds)
        self.images_per_second.append(self._images / seconds)
        pl_module.log_dict({"time/train_epoch_s": seconds, "time/train_images_per_s": self._images / seconds})
