"""Lookahead: every few steps the weights jump to their running average, and the run ends on it."""

import io
from types import SimpleNamespace

import lightning as L
import pytest
import torch
import torch.nn as nn

from cnnlab.callbacks import FreezeParameters, Lookahead
from cnnlab.errors import UserError


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


def step(module: Tiny, callback: Lookahead, trainer, value: float) -> None:
    """An optimizer step that sets every weight and batch-norm statistic to ``value``."""
    with torch.no_grad():
        for tensor in module.model.state_dict().values():
            if tensor.is_floating_point():
                tensor.fill_(value)
    trainer.global_step += 1
    callback.on_train_batch_end(trainer, module, None, None, 0)


def weight(module: Tiny) -> float:
    return module.model[0].weight[0, 0].item()


def test_every_few_steps_the_weights_become_the_average_with_airbench94s_rising_decay():
    module, callback = Tiny(), Lookahead(every=5, decay=0.5, power=3)
    trainer = SimpleNamespace(global_step=0, estimated_stepping_batches=10)
    with torch.no_grad():
        module.model[0].weight.fill_(0.0)
    callback.on_fit_start(trainer, module)  # the slow copy starts at the initial weights (0)
    for value in (1.0, 2.0, 3.0, 4.0):
        step(module, callback, trainer, value)
        assert weight(module) == value  # no averaging between the every-5 steps
    step(module, callback, trainer, 5.0)
    decay = 0.5 * (5 / 10) ** 3
    assert weight(module) == pytest.approx(decay * 0 + (1 - decay) * 5.0)
    # the batch-norm statistics are averaged too, the step counter (an integer) is not
    assert module.model[1].running_mean[0].item() == pytest.approx((1 - decay) * 5.0)
    slow = weight(module)
    for value in (6.0, 7.0, 8.0, 9.0):
        step(module, callback, trainer, value)
    step(module, callback, trainer, 10.0)  # the last step: averaged with the full decay, and kept
    assert weight(module) == pytest.approx(0.5 * slow + 0.5 * 10.0)
    assert callback._done
    ended = weight(module)
    step(module, callback, trainer, 11.0)  # a step past the end (nothing more to average)
    assert weight(module) == 11.0 and ended == pytest.approx(0.5 * slow + 5.0)


def test_the_average_is_in_the_checkpoint_and_a_resumed_run_continues_it():
    module, callback = Tiny(), Lookahead(every=2, decay=0.9, power=1)
    trainer = SimpleNamespace(global_step=0, estimated_stepping_batches=100)
    callback.on_fit_start(trainer, module)
    for value in (1.0, 2.0, 3.0):
        step(module, callback, trainer, value)
    buffer = io.BytesIO()
    torch.save(callback.state_dict(), buffer)
    buffer.seek(0)
    resumed = Lookahead(every=2, decay=0.9, power=1)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    copy = Tiny()
    copy.load_state_dict(module.state_dict())
    resumed.on_fit_start(trainer, copy)
    saved_step = trainer.global_step
    step(module, callback, trainer, 4.0)
    trainer.global_step = saved_step
    step(copy, resumed, trainer, 4.0)
    assert weight(copy) == pytest.approx(weight(module)) and weight(module) != 4.0


def test_bad_settings_are_one_line():
    with pytest.raises(UserError, match="every must be 1 or more"):
        Lookahead(every=0)
    with pytest.raises(UserError, match="decay must be from 0 to 1"):
        Lookahead(decay=1.5)


def test_frozen_parameters_train_for_the_given_epochs_only():
    module, callback = Tiny(), FreezeParameters(["model.0.bias"], epochs=2)
    callback.on_fit_start(SimpleNamespace(), module)
    trains = []
    for epoch in range(4):
        callback.on_train_epoch_start(SimpleNamespace(current_epoch=epoch), module)
        trains.append(module.model[0].bias.requires_grad)
    assert trains == [True, True, False, False]
    assert module.model[0].weight.requires_grad  # the others are left alone
    with pytest.raises(UserError, match="no parameter model.whiten.bias; its names look like model.0.weight"):
        FreezeParameters(["model.whiten.bias"], epochs=3).on_fit_start(SimpleNamespace(), module)


@pytest.mark.slow
def test_the_speed_recipe_trains_on_every_image_freezes_the_whitening_bias_and_ends_on_the_average(
    cifar_root, in_tmp
):
    from cnnlab.lightning_cli import CNNLabCLI
    from tests.cli_args import QUIET, on_data, recipe

    class Watch(L.Callback):
        epochs: list[int] = []
        bias_has_gradient: dict[int, bool] = {}

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            self.bias_has_gradient[trainer.current_epoch] = pl_module.model.whiten.bias.grad is not None

        def on_train_epoch_end(self, trainer, pl_module):
            self.epochs.append(trainer.current_epoch)

    watch = Watch()
    args = [
        *recipe("cifar10_speedrun"), *on_data(cifar_root, batch_size=50),
        "--trainer.max_steps", "14", "--trainer.precision", "32-true",
        "--trainer.callbacks.init_args.epochs", "2", *QUIET,
    ]  # fmt: skip
    cli = CNNLabCLI(args=args, run=False)
    cli.trainer.callbacks.append(watch)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    # 200 images, no validation split: 4 batches an epoch, 14 steps end in the fourth epoch, which ends
    # (and is checkpointed) there
    assert cli.trainer.global_step == 14 and watch.epochs == [0, 1, 2, 3]
    assert "val/acc" not in cli.trainer.callback_metrics
    # the whitening bias learns in the first 2 epochs only (the lookahead still averages it, as airbench94's)
    assert watch.bias_has_gradient == {0: True, 1: True, 2: False, 3: False}
    lookahead = next(c for c in cli.trainer.callbacks if isinstance(c, Lookahead))
    assert lookahead._done
    for name, tensor in cli.model.model.state_dict().items():
        if tensor.is_floating_point():
            assert torch.equal(tensor, lookahead._slow[name]), name
    saved = torch.load(
        in_tmp / "lightning_logs" / "cifar10_speedrun" / "version_0" / "checkpoints" / "last.ckpt",
        weights_only=True,
    )
    assert torch.equal(saved["state_dict"]["model.head.weight"], cli.model.model.head.weight)
    groups = cli.trainer.optimizers[0].param_groups
    assert sorted(g["lr"] / groups[0]["lr"] for g in groups) == pytest.approx([1.0, 64.0])
