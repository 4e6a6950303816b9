"""Architectures as plain ``nn.Module``s, looked up by name through the registry.

Importing this package registers every family, so ``get_model("resnet18")`` works.
"""

from models import alexnet, fastcnn, lenet, mobilenet, resnet, simple, vgg, vit  # noqa: F401  (registers the families)
from models.classifier import ImageClassifier
from models.registry import get_model, list_models, register_model

__all__ = ["ImageClassifier", "get_model", "list_models", "register_model"]
