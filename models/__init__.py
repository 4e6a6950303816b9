"""Architectures as plain ``nn.Module``s, looked up by name through the registry.

Importing this package registers every family, so ``get_model("resnet18")`` works.
"""

# Importing the family modules registers their architectures.
from models import airbench, alexnet, fastcnn, lenet, mobilenet, resnet, simple, vgg, vit  # noqa: F401
from models.classifier import ImageClassifier
from models.distill import DistillationClassifier
from models.registry import get_model, list_models, register_model

__all__ = ["DistillationClassifier", "ImageClassifier", "get_model", "list_models", "register_model"]
