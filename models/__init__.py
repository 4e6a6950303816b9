"""Architectures as plain ``nn.Module``s, looked up by name through the registry, and the one
LightningModule that trains them (``ImageClassifier``).

Importing this package registers every family, so ``get_model("resnet18")`` works. Installed, it is
``cnnlab.models``; it imports nothing of the ``cnnlab`` application.
"""

# Importing the family modules registers their architectures.
from . import airbench, alexnet, fastcnn, lenet, mobilenet, resnet, simple, vgg, vit  # noqa: F401
from .checkpoint import Checkpoint, read_checkpoint
from .classifier import ImageClassifier
from .distill import DistillationClassifier
from .registry import get_model, list_models, register_model

__all__ = [
    "Checkpoint",
    "DistillationClassifier",
    "ImageClassifier",
    "get_model",
    "list_models",
    "read_checkpoint",
    "register_model",
]
