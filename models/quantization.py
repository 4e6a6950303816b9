"""INT8 models for x86 CPUs: post-training static quantization and quantization-aware training.

Weights (per channel) and activations (per tensor) of convolutions and linear layers become int8. The
result runs on the CPU's int8 kernels (oneDNN / FBGEMM through the ``x86`` quantized engine) without
compilation and is saved as TorchScript.

* Post-training (``quantize_int8``): the activation ranges are observed on calibration images.
* Quantization-aware training (``prepare_qat``, then ``convert_qat``, Jacob et al. 2018): fine-tuning runs
  with fake quantization (float values rounded to the int8 grid in the forward pass, gradients passed
  straight through) and batch norm folded into the convolutions, so the weights learn to live with the
  rounding; the fake-quantized model's ranges become the int8 model's. Its state is tensors only, so its
  checkpoints load with ``weights_only=True``.

Why FX graph mode quantization (``torch.ao.quantization.quantize_fx``), which torch marks deprecated in
favour of torchao's PT2E flow: with torch 2.14 and torchao 0.18 on this CPU, a PT2E int8 model runs as
int8 only after ``torch.compile`` (minutes of compilation on a small CPU) or after torchao's x86 lowering,
whose packed weights cannot be saved; FX mode gives a file 4x smaller and int8 kernels at once. When
torch drops ``torch.ao.quantization``, this file is the one to port to PT2E.
"""

import contextlib
import copy
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from .errors import ModelError

ENGINE = "x86"


@contextlib.contextmanager
def _quiet():
    """Silence torch.ao's deprecation notices (see the module docstring) and the tracer's warnings."""
    with warnings.catch_warnings():
        for category in (DeprecationWarning, FutureWarning, UserWarning):
            warnings.simplefilter("ignore", category)
        yield


@contextlib.contextmanager
def _traceable(architecture: str = "this architecture"):
    try:
        yield
    # what tracing an architecture that FX cannot follow raises (airbench's whitening conv: TypeError)
    except (torch.fx.proxy.TraceError, NotImplementedError, TypeError) as err:
        reason = f"{type(err).__name__}: {err}".splitlines()[0]
        raise ModelError(f"{architecture} cannot be quantized to int8 ({reason})") from err


def quantize_int8(model: nn.Module, calibration_batches: Iterable[torch.Tensor]) -> nn.Module:
    """An int8 copy of ``model`` (float inputs and outputs), calibrated on ``calibration_batches``."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = ENGINE
    batches = list(calibration_batches)
    if not batches:
        raise ModelError("int8 calibration needs at least one batch of images")
    model = copy.deepcopy(model).eval()
    with _traceable(), _quiet(), torch.no_grad():
        prepared = prepare_fx(model, get_default_qconfig_mapping(ENGINE), (batches[0],))
        for batch in batches:
            prepared(batch)  # the observers record activation ranges
        return convert_fx(prepared)


def prepare_qat(model: nn.Module, example: torch.Tensor, architecture: str = "this architecture"):
    """A fake-quantized copy of ``model`` to train (batch norm folded into the convolutions before it)."""
    from torch.ao.quantization import get_default_qat_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    torch.backends.quantized.engine = ENGINE
    with _traceable(architecture), _quiet():
        qconfig = get_default_qat_qconfig_mapping(ENGINE)
        prepared = prepare_qat_fx(copy.deepcopy(model).train(), qconfig, (example,))
        with torch.no_grad():  # some traced graphs fail only when run; a copy, so no range sees the example
            copy.deepcopy(prepared).eval()(example)
        return prepared


def is_quantization_aware(model: nn.Module) -> bool:
    """Whether ``model`` holds fake quantization (``prepare_qat``'s result, or a module wrapping it)."""
    from torch.ao.quantization import FakeQuantizeBase

    return any(isinstance(m, FakeQuantizeBase) for m in model.modules())


def convert_qat(model: nn.Module) -> nn.Module:
    """The int8 model of a quantization-aware one, with the ranges it trained with."""
    from torch.ao.quantization.quantize_fx import convert_fx

    torch.backends.quantized.engine = ENGINE
    with _quiet(), torch.no_grad():
        return convert_fx(copy.deepcopy(model).eval())


def save_int8(model: nn.Module, example: torch.Tensor, path: str | Path) -> None:
    """Save the quantized ``model`` as TorchScript (int8 weights, any batch size)."""
    with _quiet(), torch.no_grad():
        torch.jit.save(torch.jit.trace(model, example), str(path))


def load_int8(path: str | Path) -> nn.Module:
    torch.backends.quantized.engine = ENGINE
    with _quiet():
        return torch.jit.load(str(path), map_location="cpu").eval()


def calibration_batches(images: torch.Tensor, batch_size: int = 64) -> list[torch.Tensor]:
    return list(images.split(batch_size))
