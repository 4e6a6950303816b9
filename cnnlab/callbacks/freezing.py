"""Freeze named parameters after a number of epochs (airbench94 trains its whitening layer's bias for
the first 3 epochs only)."""

import lightning as L

from cnnlab.errors import UserError


class FreezeParameters(L.Callback):
    """Train ``parameters`` (names as in the LightningModule's ``named_parameters``, e.g.
    ``model.whiten.bias``) for the first ``epochs`` epochs, then stop: from then on they get no gradient,
    so the optimizer leaves them (and their momentum) alone. Set at the start of every epoch from the
    epoch number, so a resumed run freezes at the same point."""

    def __init__(self, parameters: list[str], epochs: int):
        if epochs < 0:
            raise UserError(f"FreezeParameters' epochs must be 0 or more, got {epochs}")
        self.parameters, self.epochs = list(parameters), epochs

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        known = dict(pl_module.named_parameters())
        missing = [name for name in self.parameters if name not in known]
        if missing:
            some = ", ".join(list(known)[:6])
            raise UserError(
                f"FreezeParameters: the model has no parameter {', '.join(missing)}; "
                f"its names look like {some}"
            )

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        known = dict(pl_module.named_parameters())
        for name in self.parameters:
            known[name].requires_grad_(trainer.current_epoch < self.epochs)
