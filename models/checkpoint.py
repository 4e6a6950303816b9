"""The one reader of checkpoints: every command, tool and option that opens a ``.ckpt`` file goes here.

``read_checkpoint(path)`` loads a file with ``torch.load(weights_only=True)`` only (tensors and plain
values: a file carrying pickled Python objects is refused before any of it runs) and turns every way a
file can be wrong (missing, truncated, not a checkpoint, pickled code, an untrusted class name) into one
``CheckpointError`` line. What it returns knows the checkpoint's layout:

* ``hparams``: the model's hyperparameters, without Lightning's private ``_class_path`` and
  ``_instantiator`` entries (never imported: the class is looked up among this package's own classes by
  name, and any other name is refused);
* ``architecture_weights()``: the architecture's weights (the ``model.`` entries), with the masks of an
  unfinished ``torch.nn.utils.prune`` folded in;
* ``build_architecture()`` and ``build_classifier()``: the model, built from the hyperparameters with
  those weights.

A command that reads a file and then has Lightning restore from it keeps what it read
(``read_checkpoint(path, keep=True)``); cnnlab's checkpoint plugin hands that to Lightning
(``take_checkpoint``), so each checkpoint is read once.
"""

import inspect
import os
import pickle
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .errors import CheckpointError
from .registry import get_model

# The package this file is installed in (``cnnlab.models``), and the names earlier versions used.
PACKAGE = __name__.rpartition(".")[0]
LEGACY_PACKAGES = ("models",)
# Module prefixes whose classes a config or checkpoint may name: cnnlab's own packages, torch's optimizers
# and schedulers, and Lightning's callbacks, loggers and plugins. Nothing else is imported for a file.
TRUSTED_IMPORTS = tuple(
    dict.fromkeys(
        (
            "cnnlab",
            PACKAGE.partition(".")[0],
            "torch.optim",
            "lightning.pytorch.callbacks",
            "lightning.pytorch.loggers",
            "lightning.pytorch.plugins",
            "lightning.pytorch.cli.ReduceLROnPlateau",
        )
    )
)
HINT = "pass a .ckpt file written by cnnlab fit"


def is_trusted(class_path: str) -> bool:
    """Whether ``class_path`` lies under one of ``TRUSTED_IMPORTS`` (a check of the name: no import)."""
    return any(class_path == p or class_path.startswith(p + ".") for p in TRUSTED_IMPORTS)


def _classifier_classes() -> dict[str, type]:
    from .classifier import ImageClassifier
    from .distill import DistillationClassifier

    return {cls.__name__: cls for cls in (ImageClassifier, DistillationClassifier)}


def classifier_class(class_path: str | None, key: str = "hyper_parameters._class_path") -> type:
    """The LightningModule class that ``class_path`` names, looked up among this package's classes only
    (``cnnlab.models.ImageClassifier``, or ``models.ImageClassifier`` in files written before cnnlab was
    installed under one name). Nothing is imported; any other name is a ``CheckpointError``."""
    classes = _classifier_classes()
    if class_path is None:
        return classes["ImageClassifier"]
    module, _, name = str(class_path).rpartition(".")
    modules = {
        f"{package}{suffix}"
        for package in (PACKAGE, *LEGACY_PACKAGES)
        for suffix in ("", ".classifier", ".distill")
    }
    if name in classes and module in modules:
        return classes[name]
    raise CheckpointError(
        f"{key} names {class_path}, which is not one of cnnlab's model classes "
        f"({', '.join(f'{PACKAGE}.{n}' for n in classes)}); cnnlab imports nothing a file names "
        "outside its own packages, so nothing was imported; pass a checkpoint written by cnnlab fit"
    )


@dataclass
class Checkpoint:
    """A checkpoint file's contents (``data``, as ``torch.load`` gave them) and what cnnlab reads in it."""

    path: Path
    data: dict[str, Any]

    @property
    def hparams(self) -> dict[str, Any]:
        """The model's hyperparameters, without Lightning's private entries."""
        found = self.data.get("hyper_parameters") or {}
        return {k: v for k, v in found.items() if not str(k).startswith("_")}

    @property
    def model_class(self) -> type:
        return classifier_class((self.data.get("hyper_parameters") or {}).get("_class_path"))

    @property
    def class_path(self) -> str:
        """The model class as the CLI names it (``cnnlab.models.ImageClassifier``)."""
        return f"{PACKAGE}.{self.model_class.__name__}"

    def require_model(self) -> dict[str, Any]:
        """The hyperparameters, checked to describe a cnnlab model."""
        hparams = self.hparams
        if "arch" not in hparams or not any(k.startswith("model.") for k in self.data["state_dict"]):
            raise CheckpointError(
                f"{self.path} is not a cnnlab checkpoint (no architecture or model weights in it); {HINT}"
            )
        return hparams

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The module's weights, with unfinished pruning (``name_orig`` and ``name_mask``) folded in."""
        state = self.data["state_dict"]
        if not any(k.endswith("_orig") for k in state):
            return dict(state)
        folded = {k: v for k, v in state.items() if not k.endswith(("_orig", "_mask"))}
        for key in state:
            if key.endswith("_orig"):
                name = key.removesuffix("_orig")
                folded[name] = state[key] * state[f"{name}_mask"]
        return folded

    def architecture_weights(self) -> dict[str, torch.Tensor]:
        """The architecture's weights: the ``model.`` entries of the module's, prune masks folded in."""
        self.require_model()
        return {k.removeprefix("model."): v for k, v in self.state_dict().items() if k.startswith("model.")}

    def normalisation(self) -> tuple[list[float], list[float]] | None:
        """Mean and std of the training data: the hyperparameters', else the data module state that
        earlier image-folder runs saved; None when the checkpoint records neither."""
        hp = self.hparams
        if hp.get("mean") and hp.get("std"):
            return list(hp["mean"]), list(hp["std"])
        for value in self.data.values():  # Lightning stores a data module's state under its class name
            if isinstance(value, dict) and value.get("mean") and value.get("std"):
                return list(value["mean"]), list(value["std"])
        return None

    def build_architecture(self, **overrides: Any) -> nn.Module:
        """The registry's architecture with this checkpoint's weights (no pretrained download)."""
        hp = {**self.require_model(), **overrides}
        arch_kwargs = dict(hp.get("arch_kwargs") or {})
        if "pretrained" in arch_kwargs:
            arch_kwargs["pretrained"] = False  # the checkpoint holds every weight
        model = get_model(
            hp["arch"],
            num_classes=hp.get("num_classes", 10),
            in_channels=hp.get("in_channels", 3),
            image_size=hp.get("image_size", 32),
            **arch_kwargs,
        )
        if hp.get("quantization_aware"):  # its weights are those of the fake-quantized model
            from .quantization import prepare_qat

            size = hp.get("image_size", 32)
            model = prepare_qat(model, torch.zeros(2, hp.get("in_channels", 3), size, size), hp["arch"])
        self._load(model, self.architecture_weights())
        return model

    def build_classifier(self, cls: type | None = None, strict: bool = True, **overrides: Any):
        """``cls`` (default: the checkpoint's own class) built from the hyperparameters, with the weights.

        Hyperparameters that ``cls`` does not take are left out, so a distilled student builds as a plain
        ``ImageClassifier``; ``overrides`` replace hyperparameters."""
        cls = cls or self.model_class
        hparams = {**self.require_model(), **overrides}
        accepted = _init_parameters(cls)
        if accepted is not None:
            hparams = {k: v for k, v in hparams.items() if k in accepted}
        arch_kwargs = dict(hparams.get("arch_kwargs") or {})
        if arch_kwargs.get("pretrained"):
            hparams["arch_kwargs"] = {**arch_kwargs, "pretrained": False}
        model = cls(**hparams)
        model.on_load_checkpoint(self.data)
        self._load(model, self.state_dict(), strict=strict)
        return model

    def _load(self, model: nn.Module, weights: dict[str, torch.Tensor], strict: bool = True) -> None:
        try:
            model.load_state_dict(weights, strict=strict)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0].rstrip(":")
            raise CheckpointError(
                f"the weights in {self.path} do not fit the model its hyperparameters describe ({first}); "
                f"{HINT} with this version of cnnlab"
            ) from err


def _init_parameters(cls: type) -> set[str] | None:
    """The keyword arguments ``cls`` takes, following ``**kwargs`` up to its base classes; None for any."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names - {"self"}
    return None


# -- reading ----------------------------------------------------------------------------------------------
_KEPT: dict[tuple, Checkpoint] = {}


def _identity(path: Path) -> tuple:
    stat = path.stat()
    return (str(path.resolve()), stat.st_mtime_ns, stat.st_size, stat.st_ino)


def read_checkpoint(path: str | os.PathLike, keep: bool = False) -> Checkpoint:
    """The checkpoint at ``path``, checked; a ``CheckpointError`` line for anything else.

    ``keep``: also keep it for ``take_checkpoint`` (until the file changes or another is kept), for a
    command that reads the file and then has Lightning restore from it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass an existing .ckpt file or 'last'")
    key = _identity(path)
    if key in _KEPT:
        return _KEPT[key]
    ckpt = Checkpoint(path, _load(path))
    _check_class_paths(ckpt)
    if keep:
        _KEPT.clear()
        _KEPT[key] = ckpt
    return ckpt


def take_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The contents of ``path`` for Lightning to restore from: those ``read_checkpoint`` kept, handed over
    and no longer kept, or else the file read now."""
    data = read_checkpoint(path).data
    _KEPT.clear()
    return data


def _load(path: Path) -> dict[str, Any]:
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says it all
            warnings.simplefilter("ignore")
            data = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as err:
        if re.search(r"unsupported (global|class)", str(err), re.I):
            raise CheckpointError(
                f"refusing to load {path}: it carries pickled Python code ({_unsafe_reason(err)}); cnnlab "
                "only loads checkpoints of tensors and plain values (torch.load weights_only=True), so "
                "nothing in it ran"
            ) from err
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint ({_unsafe_reason(err)}: a plain pickle or another format); "
            f"nothing in it ran; {HINT}"
        ) from err
    except Exception as err:  # torch.load fails on broken files in many ways (RuntimeError, OSError, ...)
        raise CheckpointError(
            f"{path} is truncated or not a PyTorch checkpoint ({_first_line(err)}); pass a complete .ckpt "
            "file cnnlab wrote"
        ) from err
    if not isinstance(data, dict) or not isinstance(data.get("state_dict"), dict):
        raise CheckpointError(f"{path} is not a Lightning checkpoint (it has no state_dict); {HINT}")
    return data


def _check_class_paths(ckpt: Checkpoint) -> None:
    """Refuse, before anything is imported, a checkpoint whose hyperparameters name untrusted classes."""
    raw = ckpt.data.get("hyper_parameters") or {}
    if not isinstance(raw, dict):
        raise CheckpointError(f"{ckpt.path} has hyperparameters that are not a mapping; {HINT}")
    if "_class_path" in raw:
        classifier_class(raw["_class_path"], f"hyper_parameters._class_path in {ckpt.path}")
    for key in ("optimizer", "lr_scheduler"):
        value = raw.get(key)
        class_path = value.get("class_path") if isinstance(value, dict) else None
        if class_path is not None and not is_trusted(str(class_path)):
            raise CheckpointError(
                f"hyper_parameters.{key}.class_path in {ckpt.path} names {class_path}, outside the classes "
                f"cnnlab trusts ({', '.join(TRUSTED_IMPORTS)}); nothing was imported; {HINT}"
            )


def _unsafe_reason(err: Exception) -> str:
    for line in str(err).splitlines():
        if re.search(r"unsupported (global|class|operand)", line, re.I):
            return line.strip().removeprefix("WeightsUnpickler error: ").split(". ")[0].rstrip(".")
    return "objects other than tensors and plain values"


def _first_line(err: Exception) -> str:
    first = (str(err).strip().splitlines() or [""])[0].split(". ")[0].strip("'\"")
    return first if len(first) > 4 else f"{type(err).__name__} {first}".strip()
