"""Knowledge distillation (Hinton, Vinyals and Dean, "Distilling the knowledge in a neural network", 2015).

``DistillationClassifier`` trains its architecture (the student) against a frozen teacher read from a
cnnlab checkpoint::

    loss = alpha * KL(p_teacher || p_student) * T^2 + (1 - alpha) * cross-entropy(student, labels)

where ``p = softmax(logits / T)``. The T^2 factor keeps the soft-target gradients on the scale of the
hard-target ones when T changes. Validation and test measure the student alone.

The teacher is not a submodule: it is not in the optimizer, not in ``state_dict`` (checkpoints hold the
student only), and ``train()`` never reaches it, so it stays in eval mode. It is read when ``fit``
starts; ``cnnlab test --ckpt_path <student>.ckpt`` and ``load_from_checkpoint`` need no teacher file.
"""

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import read_checkpoint
from .classifier import ImageClassifier
from .errors import ModelError


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float):
    """``KL(softmax(teacher / T) || softmax(student / T)) * T^2``, averaged over the batch."""
    student = F.log_softmax(student_logits / temperature, dim=1)
    teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(student, teacher, log_target=True, reduction="batchmean") * temperature**2


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    temperature: float = 4.0,
    alpha: float = 0.9,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """``alpha * soft_target_loss + (1 - alpha) * cross_entropy(student_logits, targets)``: what
    ``DistillationClassifier`` minimises."""
    soft = soft_target_loss(student_logits, teacher_logits, temperature)
    hard = F.cross_entropy(student_logits, targets, label_smoothing=label_smoothing)
    return alpha * soft + (1 - alpha) * hard


def load_teacher(path: str, num_classes: int, in_channels: int) -> nn.Module:
    """The architecture of a cnnlab checkpoint with its trained weights, frozen and in eval mode."""
    ckpt = read_checkpoint(path)
    hparams = ckpt.require_model()
    for name, wanted in (("num_classes", num_classes), ("in_channels", in_channels)):
        if hparams.get(name) != wanted:
            raise ModelError(
                f"teacher {path} has {name}={hparams.get(name)} but the student has {name}={wanted}; "
                "distil from a teacher trained on the same data set"
            )
    # Its random initialisation (overwritten next) must not shift the run's random stream: with the same
    # seed, alpha=0 then trains exactly the student of the plain recipe.
    with torch.random.fork_rng(devices=[]):
        teacher = ckpt.build_architecture()
    return teacher.eval().requires_grad_(False)


class DistillationClassifier(ImageClassifier):
    """An ``ImageClassifier`` (the student, ``arch``) trained against a frozen teacher.

    Args:
        teacher: a cnnlab checkpoint (``.ckpt`` from ``cnnlab fit``) of a model trained on the same data
            set; its architecture comes from the checkpoint's hyperparameters.
        temperature: softmax temperature T of the soft targets (> 0).
        alpha: weight of the soft-target term; ``1 - alpha`` weighs the cross-entropy with the labels
            (``label_smoothing`` applies to it). ``alpha: 0`` trains the student alone (with the same
            recipe otherwise: the control run).
        **kwargs: the student's ``ImageClassifier`` arguments (``arch``, ``optimizer``, ...).
    """

    def __init__(self, teacher: str, temperature: float = 4.0, alpha: float = 0.9, **kwargs: Any):
        super().__init__(**kwargs)
        if temperature <= 0:
            raise ModelError(f"temperature must be > 0, got {temperature}")
        if not 0 <= alpha <= 1:
            raise ModelError(f"alpha must be between 0 and 1, got {alpha}")
        # Kept out of nn.Module's registry (see the module docstring); set in setup("fit").
        object.__setattr__(self, "teacher", None)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit" and self.teacher is None:
            hp = self.hparams
            object.__setattr__(self, "teacher", load_teacher(hp.teacher, hp.num_classes, hp.in_channels))

    def on_fit_start(self) -> None:
        self.teacher.to(self.device)
        super().on_fit_start()

    def training_loss(
        self, images: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = self.teacher(images)  # same normalised images as the student's
        hp = self.hparams
        loss = distillation_loss(
            logits, teacher_logits, targets, hp.temperature, hp.alpha, hp.label_smoothing
        )
        if self._logging_step():  # the two terms, for the curves (once per log_every_n_steps)
            student = logits.detach()
            kd = soft_target_loss(student, teacher_logits, hp.temperature)
            self.log_dict({"train/kd_loss": kd, "train/ce_loss": self._loss(student, targets)})
        return loss
