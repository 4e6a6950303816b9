"""INT8 post-training static quantization for x86 CPUs.

Weights (per channel) and activations (per tensor) of convolutions and linear layers become int8, with
activation ranges observed on calibration images. The result runs on the CPU's int8 kernels (oneDNN /
FBGEMM through the ``x86`` quantized engine) without compilation and is saved as TorchScript.

Why FX graph mode quantization (``torch.ao.quantization.quantize_fx``), which torch marks deprecated in
favour of torchao's PT2E flow: with torch 2.14 and torchao 0.18 on this CPU, a PT2E int8 model runs as
int8 only after ``torch.compile`` (minutes of compilation on a small CPU) or after torchao's x86 lowering,
whose packed weights cannot be saved; FX mode gives a file 4x smaller and int8 kernels at once. When
torch drops ``torch.ao.quantization``, ``quantize_int8`` is the one function to port to PT2E.
"""

import contextlib
import copy
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import UserError

ENGINE = "x86"


@contextlib.contextmanager
def _quiet():
    """Silence torch.ao's deprecation notices (see the module docstring) and the tracer's warnings."""
    with warnings.catch_warnings():
        for category in (DeprecationWarning, FutureWarning, UserWarning):
            warnings.simplefilter("ignore", category)
        yield


def quantize_int8(model: nn.Module, calibration_batches: Iterable[torch.Tensor]) -> nn.Module:
    """An int8 copy of ``model`` (float inputs and outputs), calibrated on ``calibration_batches``."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = ENGINE
    batches = list(calibration_batches)
    if not batches:
        raise UserError("int8 calibration needs at least one batch of images")
    model = copy.deepcopy(model).eval()
    try:
        with _quiet(), torch.no_grad():
            prepared = prepare_fx(model, get_default_qconfig_mapping(ENGINE), (batches[0],))
            for batch in batches:
                prepared(batch)  # the observers record activation ranges
            return convert_fx(prepared)
    except (torch.fx.proxy.TraceError, NotImplementedError) as err:
        reason = f"{type(err).__name__}: {err}".splitlines()[0]
        raise UserError(f"this architecture cannot be quantized to int8 ({reason})") from err


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
