"""Magnitude pruning during fine-tuning, with a per-layer sparsity report.

``MagnitudePruning`` prunes with ``torch.nn.utils.prune`` (L1 unstructured, global or per layer), as
Lightning's ``ModelPruning`` does, driven by a schedule: at the start of each epoch from
``start_epoch`` to ``end_epoch`` the sparsity of the conv and linear weights rises towards
``target_sparsity`` (cubic by default: large steps first, while there are many small weights, then
smaller ones; Zhu and Gupta, "To prune, or not to prune", 2017); the epochs after ``end_epoch``
fine-tune at the target. Pruning happens before an epoch's training, so each
epoch's validation and checkpoint see the same weights.

* Checkpoints hold plain weights with the zeros in place (the masked weights instead of
  ``weight_orig``/``weight_mask``), so they load into a plain model with ``weights_only=True``; at the
  end of fit the pruning is made permanent.
* Each time the sparsity rises, the ``ModelCheckpoint`` callbacks forget their best checkpoints so far
  (and delete those files): a less sparse model is no candidate for "best", and the post-fit test
  measures the best checkpoint at the final sparsity.
* At the start of fit the test accuracy of the starting weights is measured; at the end the run folder
  gets ``pruning.md`` and ``pruning.csv``: per-layer and global sparsity, and test accuracy before and
  after (after = the post-fit test of the best checkpoint, whose sparsity the report shows).
"""

import csv
import math
from pathlib import Path

import lightning as L
import torch
import torch.nn as nn
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from torch.nn.utils import prune

from cnnlab.errors import UserError

SCHEDULES = ("cubic", "linear", "constant")


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The conv and linear layers whose weights are pruned, by name.

    Normalisation layers are left alone (their few weights scale whole channels), and so are the output
    projections inside ``nn.MultiheadAttention``, which reads their weights without calling them.
    """
    inside_attention = {id(m.out_proj) for m in model.modules() if isinstance(m, nn.MultiheadAttention)}
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) and id(m) not in inside_attention
    ]


def weight_sparsity(module: nn.Module) -> tuple[int, int]:
    """(zeros, total) of a layer's effective weight (the masked one while pruning is on)."""
    weight = module.weight.detach()
    return int((weight == 0).sum()), weight.numel()


def sparsity_table(model: nn.Module) -> list[dict]:
    return _table(prunable_layers(model))


def _table(layers: list[tuple[str, nn.Module]]) -> list[dict]:
    rows = []
    for name, module in layers:
        zeros, total = weight_sparsity(module)
        rows.append(
            {
                "layer": name,
                "shape": "x".join(map(str, module.weight.shape)),
                "weights": total,
                "zeros": zeros,
                "sparsity": zeros / total,
            }
        )
    zeros, total = sum(r["zeros"] for r in rows), sum(r["weights"] for r in rows)
    rows.append(
        {"layer": "global", "shape": "", "weights": total, "zeros": zeros, "sparsity": zeros / max(total, 1)}
    )
    return rows


@torch.no_grad()
def test_accuracy(pl_module: L.LightningModule, datamodule: L.LightningDataModule) -> float:
    """Top-1 accuracy of ``pl_module`` on the data module's test split (batches prepared as in a run)."""
    datamodule.setup("test")
    was_training = pl_module.training
    pl_module.eval()
    correct = seen = 0
    for batch in datamodule.test_dataloader():
        batch = datamodule.transfer_batch_to_device(batch, pl_module.device, 0)
        x, y = datamodule.on_after_batch_transfer(batch, 0)
        correct += int((pl_module(x).argmax(1) == y).sum())
        seen += len(y)
    pl_module.train(was_training)
    return correct / max(seen, 1)


class MagnitudePruning(L.Callback):
    """L1 magnitude pruning of conv and linear weights to ``target_sparsity`` on a schedule.

    Args:
        target_sparsity: fraction of the pruned weights that are zero at the end (0 <= s < 1).
        start_epoch: the first epoch that starts with a pruning step.
        end_epoch: the epoch that starts at ``target_sparsity``; default: the last epoch, so that
            one epoch fine-tunes the final sparsity. Later epochs keep fine-tuning at the target.
        schedule: how the sparsity rises over the pruning epochs: ``cubic`` (Zhu and Gupta),
            ``linear``, or ``constant`` (all at once at ``start_epoch``).
        global_pruning: rank all layers' weights together (layers end with different sparsities), or
            prune each layer to the same sparsity.
        measure_before: measure the test accuracy of the starting weights at the start of fit, for the
            report (one pass over the test split).
        verbose: logging of each step: 0, 1 (global sparsity) or 2 (per layer).
    """

    def __init__(
        self,
        target_sparsity: float = 0.7,
        start_epoch: int = 0,
        end_epoch: int | None = None,
        schedule: str = "cubic",
        global_pruning: bool = True,
        measure_before: bool = True,
        verbose: int = 0,
    ):
        if not 0 <= target_sparsity < 1:
            raise UserError(f"target_sparsity must be in [0, 1), got {target_sparsity}")
        if schedule not in SCHEDULES:
            raise UserError(f"unknown pruning schedule '{schedule}'; choose one of {', '.join(SCHEDULES)}")
        if end_epoch is not None and end_epoch < start_epoch:
            raise UserError(f"end_epoch ({end_epoch}) must not be before start_epoch ({start_epoch})")
        self.global_pruning = global_pruning
        self.verbose = verbose
        self.pruned: list[tuple[nn.Module, str]] = []  # the (layer, "weight") pairs, found in setup
        self._layer_names: list[str] = []
        self.target_sparsity = target_sparsity
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch
        self.schedule = schedule
        self.measure_before = measure_before
        self.accuracy_before: float | None = None
        self.report: list[dict] = []
        self.accuracy_after: float | None = None
        self._max_epochs: int | None = None

    # -- schedule -----------------------------------------------------------------------------------
    def sparsity_at(self, epoch: int) -> float:
        """The sparsity that epoch ``epoch`` trains at."""
        end = (
            self.end_epoch
            if self.end_epoch is not None
            else max(self.start_epoch, (self._max_epochs or 1) - 1)
        )
        if epoch < self.start_epoch:
            return 0.0
        if self.schedule == "constant" or epoch >= end:
            return self.target_sparsity
        progress = (epoch - self.start_epoch + 1) / (end - self.start_epoch + 1)
        if self.schedule == "linear":
            return self.target_sparsity * progress
        return self.target_sparsity * (1 - (1 - progress) ** 3)

    def _masked_fraction(self) -> float:
        """The fraction of the pruned weights that the current masks zero (0 before the first step)."""
        zeros = total = 0
        for module, name in self.pruned:
            mask = getattr(module, f"{name}_mask", None)
            total += getattr(module, name).numel()
            zeros += 0 if mask is None else int((mask == 0).sum())
        return zeros / max(total, 1)

    def _step_amount(self, epoch: int) -> float:
        # torch's pruning removes `amount` of the weights that are still unmasked, so the step that takes
        # the masked fraction from m to s is (s - m) / (1 - m). Reading m from the masks also covers a
        # resumed run, whose checkpoint holds zeros but no masks: its first step starts from m = 0, and
        # L1 ranks the stored zeros first.
        target, masked = self.sparsity_at(epoch), self._masked_fraction()
        if target <= masked:
            return 0.0
        return (target - masked) / (1 - masked)

    # -- hooks --------------------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        layers = prunable_layers(pl_module)
        self.pruned = [(m, "weight") for _, m in layers]
        self._layer_names = [name for name, _ in layers]
        if not self.pruned:
            raise UserError("MagnitudePruning found no conv or linear layers to prune")
        for module, _ in self.pruned:
            # torch's pruning flattens weights with view(-1), which channels-last (NHWC) weights refuse;
            # set here, before the optimizer holds them, and kept by checkpoint loading.
            module.weight.data = module.weight.data.contiguous()
        self._max_epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None

    def apply_pruning(self, amount: float) -> None:
        """Mask ``amount`` of the still unmasked weights: the smallest by magnitude, over all layers
        together (``global_pruning``) or in each layer."""
        if self.global_pruning:
            prune.global_unstructured(self.pruned, pruning_method=prune.L1Unstructured, amount=amount)
        else:
            for module, name in self.pruned:
                prune.l1_unstructured(module, name, amount=amount)
        if self.verbose:
            rows = _table(list(zip(self._layer_names, (m for m, _ in self.pruned), strict=True)))
            lines = rows[-1:] if self.verbose == 1 else rows
            for row in lines:
                rank_zero_info(f"cnnlab: pruning: {row['layer']} {row['sparsity']:.2%} zeros")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.measure_before and trainer.datamodule is not None and not trainer.fast_dev_run:
            self.accuracy_before = test_accuracy(pl_module, trainer.datamodule)
            rank_zero_info(f"cnnlab: test accuracy before pruning: {self.accuracy_before:.4f}")

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        amount = self._step_amount(trainer.current_epoch)
        if amount <= 0:
            return
        self.apply_pruning(amount)
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.monitor:
                _forget_best(trainer, callback)

    # Pruning at the end of an epoch (as ModelPruning does), after its validation and checkpoint, would
    # leave the last step neither fine-tuned nor saved; here it happens in on_train_epoch_start.
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        zeros, total = map(sum, zip(*(weight_sparsity(m) for m, _ in self.pruned), strict=True))
        pl_module.log("pruning/sparsity", zeros / total)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        # the weights the model computes with (weight_orig * weight_mask) under their plain names
        state = checkpoint["state_dict"]
        for key in [k for k in state if k.endswith("_orig")]:
            name = key.removesuffix("_orig")
            state[name] = state.pop(key) * state.pop(f"{name}_mask")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for module, name in self.pruned:  # make the pruning permanent: plain weights with their zeros
            if prune.is_pruned(module) and hasattr(module, f"{name}_mask"):
                prune.remove(module, name)
        self.write_report(trainer, pl_module, accuracy_after=None)
        rank_zero_info(self.markdown())

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.report:  # the post-fit test: the report gets the tested checkpoint's sparsity and accuracy
            accuracy = trainer.callback_metrics.get("test/acc")
            where = self.write_report(trainer, pl_module, None if accuracy is None else float(accuracy))
            global_sparsity = self.report[-1]["sparsity"]
            rank_zero_info(
                f"cnnlab: tested checkpoint: {global_sparsity:.2%} sparse, test accuracy "
                f"{_fmt(self.accuracy_after)} (before pruning: {_fmt(self.accuracy_before)})"
                + (f"; report in {where}" if where else "")
            )

    # -- report -------------------------------------------------------------------------------------
    def write_report(self, trainer: L.Trainer, pl_module: L.LightningModule, accuracy_after) -> Path | None:
        """Fill ``report`` from ``pl_module`` and write it to the run folder; returns the Markdown file."""
        self.report = sparsity_table(pl_module)
        self.accuracy_after = accuracy_after
        if trainer.log_dir is None or trainer.fast_dev_run or not trainer.is_global_zero:
            return None
        folder = Path(trainer.log_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "pruning.md").write_text(self.markdown())
        with open(folder / "pruning.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(self.report[0]))
            writer.writeheader()
            writer.writerows(self.report)
        return folder / "pruning.md"

    def markdown(self) -> str:
        scope = "global" if self.global_pruning else "layer-wise"
        lines = [
            f"# Pruning report: {scope} L1 magnitude pruning to {self.target_sparsity:.0%}, {self.schedule} "
            "schedule",
            "",
            f"Test accuracy before: {_fmt(self.accuracy_before)}; after: {_fmt(self.accuracy_after)}",
            "",
            "| layer | shape | weights | zeros | sparsity |",
            "|---|---|---:|---:|---:|",
        ]
        for r in self.report:
            lines.append(
                f"| {r['layer']} | {r['shape']} | {r['weights']} | {r['zeros']} | {r['sparsity']:.2%} |"
            )
        return "\n".join(lines) + "\n"


def _fmt(accuracy: float | None) -> str:
    return "not measured" if accuracy is None or math.isnan(accuracy) else f"{accuracy:.4f}"


def _forget_best(trainer: L.Trainer, callback: ModelCheckpoint) -> None:
    """Make ``callback`` choose its best checkpoints anew, from the epochs at the new sparsity."""
    for path in callback.best_k_models:
        if path != callback.last_model_path:
            trainer.strategy.remove_checkpoint(path)
    callback.best_k_models = {}
    callback.kth_best_model_path = callback.best_model_path = ""
    callback.best_model_score = None
    callback.kth_value = torch.tensor(math.inf if callback.mode == "min" else -math.inf)
