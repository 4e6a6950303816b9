"""Lookahead weight averaging as airbench94 does it: the weights themselves jump to their running average.

Every ``every`` optimizer steps the slow copy (an exponential average of the weights and batch-norm
statistics, kept by this callback) moves towards the current weights, and the current weights are set to
it: ``slow = decay * slow + (1 - decay) * weights; weights = slow``. The decay rises with the run as
``decay * (step / total) ** power`` (airbench94: 0.95**5 and 3), so early steps are barely averaged and
the last ones strongly. After the last step the weights become the slow copy, before the last
validation and checkpoint, so what is tested and saved is the average.

Unlike an EMA used only for evaluation (``EMAWeightAveraging``), training continues from the averaged
weights. The slow copy is part of the callback's checkpointed state: a resumed run continues it.
"""

from typing import Any

import lightning as L
import torch

from cnnlab.errors import UserError


class Lookahead(L.Callback):
    """Args:
    every: optimizer steps between two averaging steps.
    decay: weight of the slow copy at the end of the run (airbench94: 0.95**5).
    power: how the decay rises over the run: ``decay * (step / total) ** power``.
    """

    def __init__(self, every: int = 5, decay: float = 0.95**5, power: float = 3.0):
        if every < 1:
            raise UserError(f"Lookahead's every must be 1 or more optimizer steps, got {every}")
        if not 0.0 <= decay <= 1.0:
            raise UserError(f"Lookahead's decay must be from 0 to 1, got {decay}")
        self.every, self.decay, self.power = every, decay, power
        self._slow: dict[str, torch.Tensor] | None = None
        self._done = False

    @staticmethod
    def _state(pl_module: L.LightningModule) -> dict[str, torch.Tensor]:
        # The architecture only (a distillation teacher is not trained), floating-point entries only
        # (batch norm's step counters are integers); the tensors share storage with the weights.
        module = getattr(pl_module, "model", pl_module)
        return {k: v for k, v in module.state_dict(keep_vars=False).items() if v.is_floating_point()}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._slow is None:  # a resumed run has its slow copy from the checkpoint
            self._slow = {k: v.detach().clone() for k, v in self._state(pl_module).items()}
        else:
            self._slow = {k: v.to(pl_module.device) for k, v in self._slow.items()}

    @torch.no_grad()
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx):
        step, total = trainer.global_step, int(trainer.estimated_stepping_batches)
        if self._slow is None or self._done:
            return
        current = self._state(pl_module)
        if step % self.every == 0:
            decay = self.decay * (min(step, total) / total) ** self.power
            for name, weight in current.items():
                self._slow[name].lerp_(weight, 1 - decay)
                weight.copy_(self._slow[name])
        if step >= total:  # the end: train on no further, test and save the average
            for name, weight in current.items():
                weight.copy_(self._slow[name])
            self._done = True

    def state_dict(self) -> dict[str, Any]:
        return {"slow": dict(self._slow or {}), "done": self._done}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._slow = dict(state_dict["slow"]) or None
        self._done = bool(state_dict.get("done", False))
