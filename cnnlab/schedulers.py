"""Learning-rate schedules that the torch library lacks. Usable as ``--lr_scheduler WarmupCosineLR``."""

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class WarmupCosineLR(LRScheduler):
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
        if not total_steps or total_steps < 1:
            raise ValueError(
                "WarmupCosineLR needs total_steps >= 1 (ImageClassifier fills it in from the trainer)"
            )
        self.total_steps = int(total_steps)
        self.warmup_steps = int(round(warmup * total_steps)) if warmup < 1 else int(warmup)
        self.min_lr_ratio = min_lr_ratio
        super().__init__(optimizer, last_epoch)

    def factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    def get_lr(self) -> list[float]:
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]
