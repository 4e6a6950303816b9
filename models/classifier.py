"""``ImageClassifier``: the one LightningModule that trains any registered architecture.

Training logic lives here once: cross-entropy (optional label smoothing), mixup and CutMix of the training
batch, the optimizer (optionally without weight decay on normalisation layers and biases) and LR scheduler
named in the config, and torchmetrics for every split. Hyperparameters are plain values (names, numbers,
``{"class_path", "init_args"}`` dicts), so ``ImageClassifier.load_from_checkpoint(path)`` needs nothing
else and checkpoints load with ``torch.load(weights_only=True)``.
"""

import importlib
import inspect
from typing import Any

import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from lightning.pytorch.cli import instantiate_class
from lightning.pytorch.plugins.precision import MixedPrecision
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)
from torchvision.transforms import v2

from .checkpoint import read_checkpoint
from .errors import ModelError
from .quantization import prepare_qat
from .registry import get_model, list_models

LOG_POINTS = 4  # train/loss points per epoch at the least, however few the batches
INIT_IMAGES = 5000  # training images shown to architectures with data-dependent initialisation
DEFAULT_OPTIMIZER = {"class_path": "torch.optim.Adam", "init_args": {"lr": 1e-3}}

# Schedulers whose length cnnlab derives from the trainer when the config leaves it out; they then
# step every optimizer step, so the curve spans the whole run whatever the data size.
_LENGTH_ARGS = {
    "OneCycleLR": ("total_steps", ("total_steps", "epochs")),
    "WarmupCosineLR": ("total_steps", ("total_steps",)),
    "TriangularLR": ("total_steps", ("total_steps",)),
}


def fused_if_open(config: dict[str, Any], params: list[torch.Tensor]) -> dict[str, Any]:
    """The optimizer config with ``fused: true`` where the optimizer has fused kernels for ``params``
    and the config leaves the implementation open. One kernel per step instead of one per tensor
    operation: Adam's step on simplecnn takes 0.5 ms instead of 2.8 ms on a 2-core CPU, where the
    whole training step takes about 17 ms."""
    if not all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params):
        return config
    args = dict(config.get("init_args") or {})
    module, name = config["class_path"].rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    if "fused" not in inspect.signature(cls).parameters:
        return config
    if any(args.get(k) is not None for k in ("fused", "foreach")) or args.get("differentiable"):
        return config
    return {**config, "init_args": {**args, "fused": True}}


def _instantiate(args, config: dict[str, Any], option: str):
    """An optimizer or scheduler from its config; the arguments it refuses are one line naming them."""
    try:
        return instantiate_class(args, config)
    except (ValueError, TypeError) as err:
        name = config["class_path"].rsplit(".", 1)[-1]
        raise ModelError(f"{name} refuses its options ({err}); fix them with {option}.NAME VALUE") from err


# Layers whose parameters scale or shift normalised activations (torchvision's reference scripts exempt
# these from weight decay with --norm-weight-decay 0).
NORM_LAYERS = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm*
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.RMSNorm,
)


def no_decay_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``module``'s normalisation layers and every bias, each once."""
    found: dict[int, nn.Parameter] = {}
    for layer in module.modules():
        for name, param in layer.named_parameters(recurse=False):
            if isinstance(layer, NORM_LAYERS) or name == "bias":
                found[id(param)] = param
    return list(found.values())


def split_metrics(num_classes: int, prefix: str) -> MetricCollection:
    # validate_args=False: the inputs are logits and labels made by this module; checking them costs a
    # host synchronisation per batch.
    metrics = {
        "acc": MulticlassAccuracy(num_classes, average="micro", validate_args=False),
        "precision": MulticlassPrecision(num_classes, average="macro", validate_args=False),
        "recall": MulticlassRecall(num_classes, average="macro", validate_args=False),
        "f1": MulticlassF1Score(num_classes, average="macro", validate_args=False),
    }
    # Explicit compute groups: left to torchmetrics, metrics whose states happen to be equal after the
    # first batch are merged, so a first batch without mistakes made precision, recall and F1 share the
    # top-5 counts (test/precision 1.0 on MNIST at 98.5% accuracy).
    groups = [["acc"], ["precision", "recall", "f1"]]
    if num_classes > 5:
        metrics["acc_top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro", validate_args=False)
        groups.append(["acc_top5"])
    return MetricCollection(metrics, prefix=f"{prefix}/", compute_groups=groups)


def tta_logits(model: nn.Module, x: torch.Tensor, shift: int = 0) -> torch.Tensor:
    """Test-time augmentation: the mean logits of each image and its mirror image; with ``shift``, half
    that and half the same over the image shifted by ``shift`` pixels up-left and down-right (reflect
    padding), airbench94's six views with shift 1. The one definition: training runs and exported models
    average the same views."""
    logits = (model(x) + model(x.flip(3))) / 2
    if shift <= 0:
        return logits
    h, w = x.shape[-2:]
    padded = F.pad(x, (shift,) * 4, mode="reflect")
    shifted = [padded[..., :h, :w], padded[..., 2 * shift :, 2 * shift :]]
    return (logits + sum((model(v) + model(v.flip(3))) / 2 for v in shifted) / 2) / 2


class ImageClassifier(L.LightningModule):
    """Wraps the architecture ``arch`` from the registry.

    Args:
        arch: a registered architecture: {architectures}; or ``torchvision:<name>`` for any of
            torchvision's classification models.
        num_classes, in_channels, image_size, class_names: set from the data module by the CLI.
        mean, std: the data module's normalisation per channel, set by the CLI (or at fit start for data
            modules that estimate them), so an exported model can normalise its own inputs.
        arch_kwargs: extra constructor arguments for the architecture (e.g. ``{imagenet_stem: true}``).
        label_smoothing: cross-entropy label smoothing (of the mixed targets too).
        mixup_alpha, cutmix_alpha: mixup (Zhang et al., 2018) and CutMix (Yun et al., 2019) of training
            batches with torchvision's ``v2.MixUp`` / ``v2.CutMix``: each batch is paired with itself
            shifted by one image and mixed by a weight drawn from Beta(alpha, alpha); the loss uses the
            mixed soft targets. 0 turns one off (default: both off); torchvision's reference recipes use
            mixup 0.2 and CutMix 1.0.
        mix_prob: probability that a training batch is mixed at all (as timm's ``mix_prob``).
        mix_switch_prob: with both on, probability that a mixed batch uses CutMix rather than mixup (as
            timm's ``switch_prob``; torchvision's reference recipes pick either with 0.5). Metrics, train/acc
            included, always compare the predictions with each image's own label.
        optimizer: ``{"class_path", "init_args"}`` of a torch optimizer; the CLI fills it from
            ``--optimizer``. Default: Adam, lr 1e-3. Optimizers with a fused implementation (Adam,
            AdamW, SGD, ...) use it unless the config sets ``fused`` or ``foreach`` (or the trainer
            clips gradients under mixed precision, which Lightning does not allow with them).
        lr_scheduler: the same for a scheduler, from ``--lr_scheduler``. ``OneCycleLR`` and
            ``WarmupCosineLR`` without ``total_steps`` span the whole run and step per batch; other
            schedulers step per epoch.
        tta: test-time augmentation for validation, test and prediction: average the logits of each
            image and its mirror image.
        tta_shift: with ``tta``, also average over each image shifted by this many pixels up-left and
            down-right, each with its mirror image (reflect padding; 1 gives airbench94's six views).
        channels_last: keep convolution weights and inputs in NHWC memory format. On by default: in
            fp32 on a 2-core AVX2 CPU (``python -m benchmarks.memory_format``, two runs) simplecnn,
            lenet5, mnist_cnn, resnet20 and mobilenetv2 trained 1.1-1.3x faster, fastcnn, airbench and
            resnet18 0-10% faster, alexnet and vgg11_bn between 8% slower and 4% faster; NHWC is also
            what GPU tensor cores prefer. ``false`` keeps PyTorch's NCHW.
        compile: compile the architecture with ``torch.compile`` before training.
        no_weight_decay_norm_bias: put the parameters of normalisation layers and all biases in a
            parameter group with weight decay 0, for any optimizer (torchvision's reference
            ``--norm-weight-decay 0 --bias-weight-decay 0``); weight decay then shrinks only the weights of
            convolutions and linear layers.
        norm_lr_scale: learning-rate multiplier for the parameters of normalisation layers, whose weight
            decay is divided by the same factor so that each step still shrinks them by the same share
            (airbench94's ``bias_scaler`` 64 on its batch-norm shifts). Schedulers that scale each
            group's own learning rate (``TriangularLR``, ``WarmupCosineLR``, ``LambdaLR``) keep the ratio;
            ``OneCycleLR`` with one ``max_lr`` does not.
        init_from: a cnnlab checkpoint whose architecture weights (not its trainer state) the model
            starts ``fit`` from, e.g. to fine-tune or prune a trained model; the architecture must match.
            ``--ckpt_path`` (resume) still wins over it; test and predict ignore it.
        quantization_aware: train with fake int8 quantization (``models.quantization.prepare_qat``),
            usually fine-tuning an fp32 checkpoint given as ``init_from``; ``cnnlab export --format
            int8`` then converts the trained ranges, with no calibration.
    """

    def __init__(
        self,
        arch: str = "resnet18",
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
        class_names: list[str] | None = None,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        arch_kwargs: dict[str, Any] | None = None,
        label_smoothing: float = 0.0,
        optimizer: dict[str, Any] | None = None,
        lr_scheduler: dict[str, Any] | None = None,
        tta: bool = False,
        tta_shift: int = 0,
        channels_last: bool = True,
        compile: bool = False,
        init_from: str | None = None,
        quantization_aware: bool = False,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        mix_prob: float = 1.0,
        mix_switch_prob: float = 0.5,
        no_weight_decay_norm_bias: bool = False,
        norm_lr_scale: float = 1.0,
    ):
        super().__init__()
        for name, value in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
            if value < 0:
                raise ModelError(f"--model.{name} must be 0 (off) or more, got {value}")
        if norm_lr_scale <= 0:
            raise ModelError(f"--model.norm_lr_scale must be above 0 (1 for no scaling), got {norm_lr_scale}")
        if tta_shift < 0:
            raise ModelError(f"--model.tta_shift must be 0 (mirror only) or more pixels, got {tta_shift}")
        for name, value in (("mix_prob", mix_prob), ("mix_switch_prob", mix_switch_prob)):
            if not 0.0 <= value <= 1.0:
                raise ModelError(f"--model.{name} must be a probability from 0 to 1, got {value}")
        # Lists, so hparams.yaml stays plain YAML (tuples become !!python/tuple); set before they are saved.
        mean = None if mean is None else [float(v) for v in mean]
        std = None if std is None else [float(v) for v in std]
        self.save_hyperparameters()
        self.model = self._architecture()
        if quantization_aware:
            self._quantization_aware()
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        # A tuple, not submodules: they hold no state, and model summaries stay the architecture's.
        self._mixers = tuple(
            cls(alpha=alpha, num_classes=num_classes)
            for cls, alpha in ((v2.MixUp, mixup_alpha), (v2.CutMix, cutmix_alpha))
            if alpha > 0
        )
        self.train_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.val_metrics = split_metrics(num_classes, "val")
        self.test_metrics = split_metrics(num_classes, "test")

    def setup(self, stage: str) -> None:
        # In setup, not __init__: a resumed fit's checkpoint is restored after it, and test/predict
        # never need the file.
        if stage == "fit" and self.hparams.get("init_from"):
            self.load_architecture_weights(self.hparams.init_from)

    def _architecture(self) -> torch.nn.Module:
        hp = self.hparams
        return get_model(
            hp.arch,
            num_classes=hp.num_classes,
            in_channels=hp.in_channels,
            image_size=hp.image_size,
            **(hp.arch_kwargs or {}),
        )

    def _quantization_aware(self) -> None:
        hp = self.hparams
        example = torch.zeros(2, hp.in_channels, hp.image_size, hp.image_size)
        self.model = prepare_qat(self.model, example, f"'{hp.arch}'")

    def load_architecture_weights(self, path: str) -> None:
        ckpt = read_checkpoint(path)
        weights, hparams = ckpt.architecture_weights(), ckpt.hparams
        fp32_into_qat = self.hparams.get("quantization_aware") and not hparams.get("quantization_aware")
        # fp32 weights into a quantization-aware model: into the plain architecture, then fake quantization
        # over them (its batch norm folding changes the parameters' names)
        target = self._architecture() if fp32_into_qat else self.model
        try:
            target.load_state_dict(weights)
        except RuntimeError as err:
            raise ModelError(
                f"{path} holds a '{hparams['arch']}' with {hparams.get('num_classes')} classes, which does "
                f"not fit this '{self.hparams.arch}' with {self.hparams.num_classes} classes; pass a "
                "checkpoint of the same architecture"
            ) from err
        if fp32_into_qat:
            self.model = target
            self._quantization_aware()
            if self.hparams.channels_last:
                self.model.to(memory_format=torch.channels_last)

    @classmethod
    def load_from_checkpoint(
        cls, checkpoint_path, map_location=None, hparams_file=None, strict=True, **kwargs
    ):
        """The model of a cnnlab checkpoint, read by ``models.checkpoint`` (the one checkpoint reader).

        As Lightning's method, but the file is loaded with ``weights_only=True`` and no class or function
        it names is imported: the class is ``cls`` (a distilled student loads as the student alone).
        ``kwargs`` replace hyperparameters; ``map_location`` moves the loaded model."""
        if hparams_file is not None:
            raise ModelError("cnnlab checkpoints hold their hyperparameters; hparams_file is not read")
        model = read_checkpoint(checkpoint_path).build_classifier(cls, strict=strict, **kwargs)
        if map_location is not None and not callable(map_location) and not isinstance(map_location, dict):
            model = model.to(map_location)
        return model

    @property
    def lr(self) -> float | None:
        """The optimizer's learning rate (``optimizer.init_args.lr``). Lightning's learning-rate finder
        (``--trainer.callbacks+=LearningRateFinder``) reads it and sets its suggestion here."""
        return ((self.hparams.optimizer or DEFAULT_OPTIMIZER).get("init_args") or {}).get("lr")

    @lr.setter
    def lr(self, value: float) -> None:
        config = dict(self.hparams.optimizer or DEFAULT_OPTIMIZER)
        self.hparams.optimizer = {
            **config,
            "init_args": {**(config.get("init_args") or {}), "lr": float(value)},
        }

    def configure_model(self) -> None:
        if self.hparams.compile and not getattr(self, "_compiled", False):
            self.model.compile()  # in place: parameter names and checkpoints stay as they are
            self._compiled = True

    def on_fit_start(self) -> None:
        self._record_normalisation()
        # Architectures with data-dependent initialisation (airbench's patch whitening) get up to
        # INIT_IMAGES normalised training images, once: the flag is part of their checkpointed state.
        init = getattr(self.model, "init_from_data", None)
        if init is None or bool(getattr(self.model, "initialized", False)) or self.trainer.datamodule is None:
            return
        dm, images, count = self.trainer.datamodule, [], 0
        for batch in dm.train_dataloader():
            batch = dm.on_after_batch_transfer(dm.transfer_batch_to_device(batch, self.device, 0), 0)
            images.append(batch[0])
            count += len(batch[0])
            if count >= INIT_IMAGES:
                break
        init(torch.cat(images)[:INIT_IMAGES])

    def on_train_start(self) -> None:
        self._check_schedule_length()
        # At least LOG_POINTS train/loss points per epoch on small data: 9 batches an epoch and
        # log_every_n_steps 50 would give one point per run.
        batches = self.trainer.num_training_batches
        every = self.trainer.log_every_n_steps
        if every > 0 and batches != float("inf") and batches < every * LOG_POINTS:
            self.trainer.log_every_n_steps = max(1, int(batches) // LOG_POINTS)

    def _check_schedule_length(self) -> None:
        """A per-step schedule must span the run: a resumed run asked to train longer (a larger
        ``max_epochs``) would crash OneCycleLR and leave WarmupCosineLR at its final rate, silently."""
        needed = int(self.trainer.estimated_stepping_batches)
        for config in self.trainer.lr_scheduler_configs:
            total = getattr(config.scheduler, "total_steps", None)
            if config.interval != "step" or not total or needed <= total:
                continue
            name = type(config.scheduler).__name__
            raise ModelError(
                f"the {name} learning-rate schedule spans {total} steps but this run takes {needed} "
                f"(--trainer.max_epochs {self.trainer.max_epochs}); a per-step schedule cannot be "
                "stretched without a jump in the learning rate: resume with the original "
                "--trainer.max_epochs, or start a new run from these weights with --model.init_from CKPT, "
                "which schedules the new length"
            )

    def _record_normalisation(self) -> None:
        # Data modules that estimate mean/std in setup (image folders) have none when the CLI links them;
        # recorded here, they are saved in the checkpoint's hyperparameters for export.
        dm = self.trainer.datamodule
        if self.hparams.get("mean") is None and getattr(dm, "mean", None) is not None:
            self.hparams.mean, self.hparams.std = [float(v) for v in dm.mean], [float(v) for v in dm.std]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.hparams.tta and not self.training:
            return tta_logits(self.model, x, self.hparams.get("tta_shift", 0))
        return self.model(x)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)

    def training_loss(
        self, images: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """The loss a training step minimises: the hook that variants (distillation) override.

        ``images`` are what the model saw (mixed, with mixup or CutMix); ``targets`` are class indices
        ``(B,)``, or class probabilities ``(B, num_classes)`` for a mixed batch (``F.cross_entropy``
        takes both, label smoothing included)."""
        return self._loss(logits, targets)

    def mix(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixup or CutMix of a training batch, by ``mix_prob`` and ``mix_switch_prob``: (images, soft
        targets), or the batch unchanged. Draws from torch's CPU generator, which ExactResume restores."""
        if not self._mixers or float(torch.rand(())) >= self.hparams.mix_prob:
            return images, labels
        mixer = self._mixers[0]
        if len(self._mixers) == 2 and float(torch.rand(())) < self.hparams.mix_switch_prob:
            mixer = self._mixers[1]  # CutMix
        return mixer(images, labels)

    def training_step(self, batch, batch_idx):
        x, y = batch
        x, targets = self.mix(x, y)
        logits = self(x)
        loss = self.training_loss(x, logits, targets)
        self.train_acc.update(logits.detach(), y)
        if self._logging_step():
            self.log("train/loss", loss, prog_bar=True)
        return loss

    def _logging_step(self) -> bool:
        """Whether the trainer writes step metrics after this step (every ``log_every_n_steps``).

        ``self.log`` costs about a millisecond per call on a CPU, several percent of a small model's
        step, so the step loss is handed over only when it will be written.
        """
        every = self.trainer.log_every_n_steps
        return bool(self.trainer.fast_dev_run) or (every > 0 and (self.global_step + 1) % every == 0)

    def on_train_epoch_end(self) -> None:
        # Logged once per epoch: logging a Metric object every step costs a device move per step.
        self.log("train/acc", self.train_acc.compute())
        self.train_acc.reset()

    def _eval_step(self, batch, split: str, metrics: MetricCollection) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        # sync_dist: under DDP the epoch's loss is the mean over every rank's images, not rank 0's
        self.log(f"{split}/loss", self._loss(logits, y), prog_bar=split == "val", sync_dist=True)
        metrics.update(logits, y)
        for name, metric in metrics.items():
            self.log(name, metric, prog_bar=name == "val/acc")
        return logits  # reaches callbacks' on_*_batch_end (cnnlab.callbacks)

    def validation_step(self, batch, batch_idx):
        return self._eval_step(batch, "val", self.val_metrics)

    def test_step(self, batch, batch_idx):
        return self._eval_step(batch, "test", self.test_metrics)

    def predict_step(self, batch, batch_idx):
        """Class probabilities (softmax of the logits, averaged over the mirror image with ``tta``) and
        the top five classes of each image."""
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        probs = self(x).softmax(dim=1)
        top = probs.topk(min(5, probs.shape[1]), dim=1)
        return {"probs": probs, "top_probs": top.values, "top_classes": top.indices}

    def parameter_groups(self, optimizer_args: dict[str, Any]) -> list[torch.Tensor] | list[dict[str, Any]]:
        """What the optimizer gets: all parameters, or groups: with ``no_weight_decay_norm_bias`` the
        parameters of normalisation layers and the biases get ``weight_decay`` 0; with ``norm_lr_scale``
        the normalisation layers' parameters get that multiple of the learning rate and their weight decay
        divided by it. ``optimizer_args``: the optimizer's arguments (its ``lr`` and ``weight_decay``)."""
        params = list(self.parameters())
        no_decay = self.hparams.get("no_weight_decay_norm_bias")
        scale = self.hparams.get("norm_lr_scale", 1.0)
        if not no_decay and scale == 1.0:
            return params
        exempt = {id(p) for p in no_decay_parameters(self)} if no_decay else set()
        scaled = set()
        if scale != 1.0:
            norms = [m for m in self.modules() if isinstance(m, NORM_LAYERS)]
            scaled = {id(p) for m in norms for p in m.parameters(recurse=False)}
        groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
        for p in params:
            groups.setdefault((id(p) in scaled, id(p) in exempt), []).append(p)
        lr, decay = optimizer_args.get("lr"), optimizer_args.get("weight_decay", 0.0) or 0.0
        result = []
        for (is_scaled, is_exempt), members in sorted(groups.items()):
            group: dict[str, Any] = {"params": members}
            if is_exempt:
                group["weight_decay"] = 0.0
            if is_scaled:
                if lr is None:
                    raise ModelError(
                        "--model.norm_lr_scale needs the optimizer's lr in the config (--optimizer.lr)"
                    )
                group["lr"] = float(lr) * scale
                if not is_exempt:
                    group["weight_decay"] = decay / scale
            result.append(group)
        return result

    def configure_optimizers(self):
        params, opt_config = list(self.parameters()), self.hparams.optimizer or DEFAULT_OPTIMIZER
        trainer = self._trainer
        # Lightning's mixed-precision plugin refuses gradient clipping with fused optimizers.
        if not (
            trainer and trainer.gradient_clip_val and isinstance(trainer.precision_plugin, MixedPrecision)
        ):
            opt_config = fused_if_open(opt_config, params)
        groups = self.parameter_groups(opt_config.get("init_args") or {})
        optimizer = _instantiate(groups, opt_config, "--optimizer")
        config = self.hparams.lr_scheduler
        if not config:
            return optimizer
        config = {"class_path": config["class_path"], "init_args": dict(config.get("init_args") or {})}
        name = config["class_path"].rsplit(".", 1)[-1]
        interval = "epoch"
        if name in _LENGTH_ARGS:
            arg, given = _LENGTH_ARGS[name]
            if not any(config["init_args"].get(k) for k in given):
                config["init_args"][arg] = int(self.trainer.estimated_stepping_batches)
                interval = "step"
        scheduler = _instantiate(optimizer, config, "--lr_scheduler")
        sched = {"scheduler": scheduler, "interval": interval}
        if name == "ReduceLROnPlateau":
            sched["monitor"] = "val/loss"
        return {"optimizer": optimizer, "lr_scheduler": sched}


# --model.help ImageClassifier lists the architectures (jsonargparse reads the docstring)
ImageClassifier.__doc__ = ImageClassifier.__doc__.replace("{architectures}", ", ".join(list_models()))
