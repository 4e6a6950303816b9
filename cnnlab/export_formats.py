"""Deployable models and their file formats: ONNX, TorchScript, ExportedProgram, int8 TorchScript.

A deployable model takes float images in [0, 1], shape (N, C, H, W) with any N, and normalises them
itself (the training data's mean and std are part of it); it returns logits. Beside each file, a JSON
sidecar names the classes, input size, mean and std.
"""

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import UserError
from cnnlab.models import Checkpoint, ImageClassifier
from cnnlab.models.classifier import tta_logits
from cnnlab.models.quantization import calibration_batches, convert_qat, is_quantization_aware, quantize_int8

CHECK_BATCHES = (64, 7)  # two batch sizes exercise the dynamic batch axis
ONNX_HINT = 'onnxruntime is not installed; install the optional extra: pip install "cnnlab[onnx]"'


class NormalizedModel(nn.Module):
    """``model`` behind the data module's normalisation: takes images in [0, 1], returns logits."""

    def __init__(self, model: nn.Module, mean, std, tta: bool = False, tta_shift: int = 0):
        super().__init__()
        self.model = model
        self.tta, self.tta_shift = tta, tta_shift
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - self.mean) / self.std
        return tta_logits(self.model, x, self.tta_shift) if self.tta else self.model(x)


def int8_model(model: NormalizedModel, calibration: torch.Tensor) -> nn.Module:
    """The int8 model of a deployable one: a quantization-aware model converted with the ranges it
    trained with, any other quantized after training, its ranges observed on the ``calibration`` images."""
    if is_quantization_aware(model.model):
        mean, std = model.mean.flatten().tolist(), model.std.flatten().tolist()
        return NormalizedModel(convert_qat(model.model), mean, std, model.tta, model.tta_shift).eval()
    return quantize_int8(model, calibration_batches(calibration))


def deployable(ckpt: Checkpoint, mean=None, std=None) -> tuple[NormalizedModel, dict]:
    """The checkpoint's model with normalisation included, and its description for the sidecar JSON.

    Mean and std: given, else the checkpoint's (``Checkpoint.normalisation``)."""
    classifier = ckpt.build_classifier(ImageClassifier).eval()
    if not (mean and std):
        found = ckpt.normalisation()
        if found is None:
            raise UserError(
                "the checkpoint records no normalisation (it predates cnnlab's mean/std hyperparameters); "
                "pass the training data's --mean and --std, e.g. --mean 0.1307 --std 0.3081 for MNIST"
            )
        mean, std = found
    mean, std = list(mean), list(std)
    hp = classifier.hparams
    if len(mean) != hp.in_channels or len(std) != hp.in_channels:
        raise UserError(f"mean and std need {hp.in_channels} values (one per channel), got {mean} and {std}")
    tta, shift = bool(hp.get("tta")), int(hp.get("tta_shift") or 0)
    model = NormalizedModel(classifier.model, mean, std, tta=tta, tta_shift=shift).eval()
    model.to(memory_format=torch.contiguous_format)  # channels_last runs store NHWC weights
    info = {
        "arch": hp.arch,
        "class_names": list(hp.class_names or [str(i) for i in range(hp.num_classes)]),
        "input_size": [hp.in_channels, hp.image_size, hp.image_size],
        "input": "float32 images in [0, 1], shape (N, C, H, W), any N; the model normalises them",
        "output": "logits, shape (N, num_classes)",
        "mean": mean,
        "std": std,
        "checkpoint": str(Path(ckpt.path).resolve()),
    }
    return model, info


# -- formats -----------------------------------------------------------------------------------------------
def example_input(info: dict, batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, *info["input_size"])


def batch_dim() -> dict:
    return {"images": {0: torch.export.Dim("batch", min=1, max=4096)}}


def export_onnx(model: nn.Module, info: dict, output: Path) -> None:
    # The dynamo exporter (torch.export + onnxscript); one self-contained file, batch axis dynamic.
    with torch.no_grad():
        program = torch.onnx.export(
            model,
            (example_input(info),),
            input_names=["images"],
            output_names=["logits"],
            dynamic_shapes=batch_dim(),
            dynamo=True,
            external_data=False,
        )
    program.save(str(output))


def export_torchscript(model: nn.Module, info: dict, output: Path) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notices
        torch.jit.save(torch.jit.trace(model, example_input(info)), str(output))


def export_program(model: nn.Module, info: dict, output: Path) -> None:
    with torch.no_grad():
        program = torch.export.export(model, (example_input(info),), dynamic_shapes=batch_dim())
    torch.export.save(program, str(output))


def onnx_session(path: Path):
    try:
        import onnxruntime
    except ImportError:
        raise UserError(ONNX_HINT) from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_onnx(model: nn.Module, path: Path, images: torch.Tensor) -> tuple[float, int, int]:
    """Largest |logit difference| between onnxruntime and PyTorch, and top-1 agreements out of images."""
    session = onnx_session(path)
    worst, same, total, start = 0.0, 0, 0, 0
    for size in CHECK_BATCHES:
        batch = images[start : start + size]
        start += len(batch)
        if not len(batch):
            continue
        with torch.no_grad():
            expected = model(batch)
        got = torch.from_numpy(session.run(["logits"], {"images": batch.numpy()})[0])
        worst = max(worst, (got - expected).abs().max().item())
        same += int((got.argmax(1) == expected.argmax(1)).sum())
        total += len(batch)
    return worst, same, total


def write_sidecar(output: Path, info: dict, fmt: str) -> Path:
    sidecar = output.with_name(output.name + ".json")
    sidecar.write_text(json.dumps({"format": fmt, **info}, indent=2) + "\n")
    return sidecar
