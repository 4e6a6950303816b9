"""Architectures as plain ``nn.Module``s, looked up by name through the registry, and the one
LightningModule that trains them (``ImageClassifier``).

``get_model("resnet18")`` builds any registered architecture (the families register themselves when the
registry is first asked). Installed, this package is ``cnnlab.models``; it imports nothing of the
``cnnlab`` application. Its names load on first use, so ``cnnlab.models.errors`` costs no torch import.
"""

import importlib

_WHERE = {
    "Checkpoint": "checkpoint",
    "read_checkpoint": "checkpoint",
    "ImageClassifier": "classifier",
    "DistillationClassifier": "distill",
    "get_model": "registry",
    "list_models": "registry",
    "register_model": "registry",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
