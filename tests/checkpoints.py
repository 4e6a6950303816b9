"""cnnlab-format checkpoints of untrained models, for options that read one (teacher, init_from)."""

from pathlib import Path

import lightning as L
import torch

from cnnlab.models import ImageClassifier


def make_checkpoint(
    path: Path,
    arch: str = "lenet5",
    in_channels: int = 1,
    image_size: int = 28,
    num_classes: int = 10,
    seed: int = 0,
) -> Path:
    """What ``cnnlab fit`` saves, as far as cnnlab reads it: hyperparameters and the state dict."""
    torch.manual_seed(seed)
    model = ImageClassifier(
        arch,
        num_classes=num_classes,
        in_channels=in_channels,
        image_size=image_size,
        mean=[0.5] * in_channels,
        std=[0.25] * in_channels,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    hparams = {**model.hparams, "_class_path": "cnnlab.models.ImageClassifier"}  # as LightningCLI saves it
    torch.save(
        {
            "hyper_parameters": hparams,
            "state_dict": model.state_dict(),
            "pytorch-lightning_version": L.__version__,
        },
        path,
    )
    return path
