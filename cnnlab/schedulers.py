"""Learning-rate schedules that the torch library lacks. Usable as ``--lr_scheduler WarmupCosineLR`` and
``--lr_scheduler TriangularLR``.

Both multiply each parameter group's own learning rate, so groups keep their ratios (``OneCycleLR``
sets every group to one ``max_lr``).
"""

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class _StepSchedule(LRScheduler):
    """A schedule of ``total_steps`` optimizer steps: each group's base learning rate times ``factor``."""

    def __init__(self, optimizer: Optimizer, total_steps: int | None, last_epoch: int = -1):
        if not total_steps or total_steps < 1:
            raise ValueError(
                f"{type(self).__name__} needs total_steps >= 1 (ImageClassifier fills it in from the trainer)"
            )
        self.total_steps = int(total_steps)
        super().__init__(optimizer, last_epoch)

    def factor(self, step: int) -> float:
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]


class WarmupCosineLR(_StepSchedule):
    """Linear warmup, then cosine decay to ``min_lr_ratio`` times the base learning rate.

    Stepped every optimizer step. ``ImageClassifier`` sets ``total_steps`` from the trainer (the whole
    run) when the config leaves it out.

    Args:
        total_steps: length of the schedule in optimizer steps.
        warmup: warmup length: a fraction of ``total_steps`` when below 1, else a number of steps.
        min_lr_ratio: final learning rate as a fraction of the base one.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        total_steps: int | None = None,
        warmup: float = 0.0,
        min_lr_ratio: float = 0.0,
        last_epoch: int = -1,
    ):
        self.warmup_steps = int(round(warmup * (total_steps or 0))) if warmup < 1 else int(warmup)
        self.min_lr_ratio = min_lr_ratio
        super().__init__(optimizer, total_steps, last_epoch)

    def factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class TriangularLR(_StepSchedule):
    """Piecewise-linear: from ``start`` times the base learning rate up to the base one at ``peak`` (a
    fraction of the run), then down to ``end`` times it at the last step (airbench94's ``triangle``).

    Stepped every optimizer step; ``ImageClassifier`` sets ``total_steps`` from the trainer (the whole
    run) when the config leaves it out.

    Args:
        total_steps: length of the schedule in optimizer steps.
        start, end: first and last learning rate as a fraction of the base one.
        peak: where the base learning rate is reached, as a fraction of ``total_steps``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        total_steps: int | None = None,
        start: float = 0.2,
        peak: float = 0.23,
        end: float = 0.07,
        last_epoch: int = -1,
    ):
        if not 0.0 <= peak <= 1.0:
            raise ValueError(f"TriangularLR's peak is a fraction of the run from 0 to 1, got {peak}")
        self.peak_step = int(peak * (total_steps or 0))  # as airbench94: int(0.23 * 476) = 109
        self.start, self.end = start, end
        super().__init__(optimizer, total_steps, last_epoch)

    def factor(self, step: int) -> float:
        step = min(max(step, 0), self.total_steps)
        if step < self.peak_step:
            return self.start + (1 - self.start) * step / self.peak_step
        rest = self.total_steps - self.peak_step
        return 1.0 if rest == 0 else 1 + (self.end - 1) * (step - self.peak_step) / rest
