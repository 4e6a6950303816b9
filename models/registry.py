"""Maps architecture names (``resnet18``, ``lenet5``, ...) to constructors.

Configs and checkpoints name architectures by string; this is the one place those strings resolve.
"""

import difflib
import importlib
import inspect
from collections.abc import Callable

import torch.nn as nn

from .errors import UnknownNameError

_MODELS: dict[str, Callable[..., nn.Module]] = {}

# Arguments that come from the data (linked by the CLI); a constructor receives those it declares.
DATA_ARGS = ("num_classes", "in_channels", "image_size")
# The modules that register families of architectures, imported when the registry is first asked.
FAMILIES = ("airbench", "alexnet", "fastcnn", "lenet", "mobilenet", "resnet", "simple", "vgg", "vit")
# Prefix of torchvision's own classification models (``torchvision:resnet18``), see models/tv.py.
TORCHVISION = "torchvision:"


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: register a constructor under its function name (``def resnet20`` is ``resnet20``), so
    every architecture name is a ``def`` that grep finds. Names are unique."""
    _register_families()  # cnnlab's own names are taken first
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"architecture {name!r} is already registered (by {_MODELS[name].__module__})")
    _MODELS[name] = fn
    return fn


_families_loaded = False


def _register_families() -> None:
    global _families_loaded
    if _families_loaded:
        return
    _families_loaded = True  # first, as the families call register_model while they load
    for family in FAMILIES:
        importlib.import_module(f"{__package__}.{family}")


def list_models() -> list[str]:
    _register_families()
    return sorted(_MODELS)


def get_model(name: str, **kwargs) -> nn.Module:
    """Build the architecture ``name``.

    ``num_classes``, ``in_channels`` and ``image_size`` are passed only to constructors that take them,
    so the data module can offer all three to every architecture.
    """
    if name.startswith(TORCHVISION):
        from .tv import TorchvisionClassifier

        kwargs.pop("image_size", None)
        return TorchvisionClassifier(name[len(TORCHVISION) :], **kwargs)
    _register_families()
    if name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownNameError(
            f"unknown architecture {name!r}.{hint} Known: {', '.join(list_models())}, or torchvision:<name>"
        )
    fn = _MODELS[name]
    accepted = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    for key in DATA_ARGS:
        if key in kwargs and key not in accepted and not takes_any:
            kwargs.pop(key)
    return fn(**kwargs)
