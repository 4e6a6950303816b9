"""``cnnlab export``: a trained checkpoint as a stand-alone model file for deployment.

    cnnlab export --ckpt_path CKPT --format onnx|torchscript|exported_program|int8 --output PATH

The written model takes float images in [0, 1], shape (N, C, H, W) with any N, and normalises them itself
(the data module's mean and std are part of the model); it returns logits. Beside it, ``PATH.json`` names
the classes, input size, mean and std. An ONNX file is checked right after export: onnxruntime runs it on
real test images (the data of the checkpoint's run, or of ``--config``/``--data.*``) at two batch sizes and
the logits are compared with PyTorch's.
"""

import argparse
import io
import json
import sys
import warnings
from pathlib import Path

import torch
import yaml
from lightning.pytorch.cli import instantiate_class
from torch import nn

from cnnlab.errors import DataNotFoundError, UserError
from models import ImageClassifier

FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "exported_program": ".pt2", "int8": ".int8.pt"}
CHECK_BATCHES = (64, 7)  # two batch sizes exercise the dynamic batch axis
ONNX_HINT = 'onnxruntime is not installed; install the optional extra: pip install -e ".[onnx]"'


class NormalizedModel(nn.Module):
    """``model`` behind the data module's normalisation: takes images in [0, 1], returns logits."""

    def __init__(self, model: nn.Module, mean, std, tta: bool = False):
        super().__init__()
        self.model = model
        self.tta = tta
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - self.mean) / self.std
        if self.tta:  # as ImageClassifier: average the logits of the image and its mirror image
            return (self.model(x) + self.model(x.flip(3))) / 2
        return self.model(x)


# -- the checkpoint ----------------------------------------------------------------------------------------
def load_checkpoint(ckpt_path: str | Path) -> tuple[ImageClassifier, dict]:
    """The classifier of ``ckpt_path`` (eval mode, CPU) and the raw checkpoint."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; pass an existing .ckpt file as --ckpt_path")
    ckpt = torch.load(path, weights_only=True, map_location="cpu")
    if "hyper_parameters" not in ckpt or "state_dict" not in ckpt:
        raise UserError(f"{path} is not a cnnlab training checkpoint (no hyper_parameters/state_dict)")
    source = path
    state = ckpt["state_dict"]
    if any(k.endswith("_orig") for k in state):  # torch.nn.utils.prune's masks, not yet made permanent
        ckpt = {**ckpt, "state_dict": _apply_prune_masks(state)}
        source = io.BytesIO()
        torch.save(ckpt, source)
        source.seek(0)
    classifier = ImageClassifier.load_from_checkpoint(source, map_location="cpu", weights_only=True)
    return classifier.eval(), ckpt


def _apply_prune_masks(state: dict) -> dict:
    """``name_orig * name_mask`` as ``name``: the weights a pruned model computes with."""
    folded = {k: v for k, v in state.items() if not k.endswith(("_orig", "_mask"))}
    for key in state:
        if key.endswith("_orig"):
            name = key.removesuffix("_orig")
            folded[name] = state[key] * state[f"{name}_mask"]
    return folded


def normalisation(ckpt: dict, mean=None, std=None) -> tuple[list[float], list[float]]:
    """Mean and std: given, else the model's hyperparameters, else the data module state saved in the
    checkpoint (older checkpoints of image-folder runs)."""
    if mean and std:
        return list(mean), list(std)
    hparams = ckpt.get("hyper_parameters", {})
    if hparams.get("mean") and hparams.get("std"):
        return list(hparams["mean"]), list(hparams["std"])
    for value in ckpt.values():  # Lightning stores a data module's state under its class name
        if isinstance(value, dict) and value.get("mean") and value.get("std"):
            return list(value["mean"]), list(value["std"])
    raise UserError(
        "the checkpoint records no normalisation (it predates cnnlab's mean/std hyperparameters); "
        "pass the training data's --mean and --std, e.g. --mean 0.1307 --std 0.3081 for MNIST"
    )


def deployable(ckpt_path, mean=None, std=None) -> tuple[NormalizedModel, dict]:
    """The checkpoint's model with normalisation included, and its description for the sidecar JSON."""
    classifier, ckpt = load_checkpoint(ckpt_path)
    mean, std = normalisation(ckpt, mean, std)
    hp = classifier.hparams
    if len(mean) != hp.in_channels or len(std) != hp.in_channels:
        raise UserError(f"mean and std need {hp.in_channels} values (one per channel), got {mean} and {std}")
    model = NormalizedModel(classifier.model, mean, std, tta=bool(hp.get("tta"))).eval()
    model.to(memory_format=torch.contiguous_format)  # channels_last runs store NHWC weights
    info = {
        "arch": hp.arch,
        "class_names": list(hp.class_names or [str(i) for i in range(hp.num_classes)]),
        "input_size": [hp.in_channels, hp.image_size, hp.image_size],
        "input": "float32 images in [0, 1], shape (N, C, H, W), any N; the model normalises them",
        "output": "logits, shape (N, num_classes)",
        "mean": mean,
        "std": std,
        "checkpoint": str(Path(ckpt_path).resolve()),
    }
    return model, info


# -- data for checks, calibration and accuracy ---------------------------------------------------------------
def data_config(ckpt_path, configs=(), overrides=None) -> dict | None:
    """The data module config: the run's saved config.yaml beside the checkpoint, then ``--config``
    files, then ``--data``/``--data.KEY`` overrides. None when nothing names a data module."""
    cfg = None
    run_config = Path(ckpt_path).resolve().parent.parent / "config.yaml"
    for path in [run_config] if run_config.is_file() else []:
        cfg = _merge_data(cfg, yaml.safe_load(path.read_text()).get("data"))
    for path in configs:
        if not Path(path).is_file():
            raise UserError(f"config file {path} does not exist")
        cfg = _merge_data(cfg, (yaml.safe_load(Path(path).read_text()) or {}).get("data"))
    for key, value in (overrides or {}).items():
        if key == "":
            cfg = _merge_data(cfg, {"class_path": value})
        elif cfg is None:
            raise UserError(f"--data.{key} needs a data module: pass --config RECIPE or --data CLASS")
        else:
            cfg["init_args"][key] = value
    return cfg


def _merge_data(cfg: dict | None, new: dict | None) -> dict | None:
    if not new:
        return cfg
    if isinstance(new, str):
        new = {"class_path": new}
    class_path = new.get("class_path") or (cfg or {}).get("class_path")
    if "." not in class_path:
        class_path = f"datamodules.{class_path}"
    same = cfg is not None and cfg["class_path"] == class_path
    init_args = {**(cfg["init_args"] if same else {}), **(new.get("init_args") or {})}
    return {"class_path": class_path, "init_args": init_args}


def parse_data_overrides(extra: list[str]) -> dict:
    """``--data CLASS`` and ``--data.KEY VALUE`` pairs (values parsed as YAML, as LightningCLI does)."""
    overrides, i = {}, 0
    while i < len(extra):
        arg = extra[i]
        name, eq, value = arg.partition("=")
        if not (name == "--data" or name.startswith("--data.")):
            raise UserError(f"unrecognised argument {arg}; see --help")
        if not eq:
            if i + 1 >= len(extra):
                raise UserError(f"{arg} needs a value")
            value, i = extra[i + 1], i + 1
        overrides[name.removeprefix("--data").removeprefix(".")] = yaml.safe_load(value)
        i += 1
    return overrides


def datamodule(cfg: dict, mean, std):
    """The data module of ``cfg`` with the checkpoint's normalisation (no download, no re-estimation)."""
    init_args = dict(cfg["init_args"])
    if cfg["class_path"].endswith("ImageFolderDataModule"):
        init_args.update(mean=list(mean), std=list(std))
    init_args["num_workers"] = 0
    return instantiate_class((), {"class_path": cfg["class_path"], "init_args": init_args})


def images_of(dm, split: str, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``count`` images of ``split`` (``test``, or shuffled ``train``) as floats in [0, 1], with
    their labels."""
    dm.batch_size = min(count, 256)
    dm.setup("test" if split == "test" else "fit")
    loader = dm.test_dataloader() if split == "test" else dm.train_dataloader()
    images, labels, seen = [], [], 0
    for x, y in loader:
        if x.dtype == torch.uint8:  # fast path: raw images
            x = x.float() / 255
        else:  # per-image path: normalised, undo it
            x = x * torch.tensor(dm.std).view(1, -1, 1, 1) + torch.tensor(dm.mean).view(1, -1, 1, 1)
        images.append(x)
        labels.append(y)
        seen += len(x)
        if seen >= count:
            break
    return torch.cat(images)[:count], torch.cat(labels)[:count]


def find_datamodule(ckpt_path, info: dict, configs=(), overrides=None):
    """The data module of the checkpoint's run (or of ``--config``/``--data.*``), or None with why."""
    try:
        cfg = data_config(ckpt_path, configs, overrides)
        if cfg is None:
            return None, "no data module known: pass --config RECIPE [--data.data_dir DIR]"
        dm = datamodule(cfg, info["mean"], info["std"])
        dm.setup("test")
        return dm, ""
    except DataNotFoundError as err:
        return None, str(err)


def check_images(dm, why: str, info: dict, count: int) -> tuple[torch.Tensor, str]:
    """Real test images for the export check, or random ones with a notice saying why."""
    if dm is not None:
        images, _ = images_of(dm, "test", count)
        return images, f"{len(images)} test images"
    print(f"cnnlab export: notice: checking on random images, no test images ({why})")
    torch.manual_seed(0)
    return torch.rand(count, *info["input_size"]), "random images"


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


def export(args, overrides: dict) -> Path:
    model, info = deployable(args.ckpt_path, args.mean, args.std)
    needs_data = args.format in ("onnx", "int8")
    dm, why = find_datamodule(args.ckpt_path, info, args.config, overrides) if needs_data else (None, "")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "onnx":
        try:  # fail before exporting when the check cannot run
            import onnxruntime  # noqa: F401
        except ImportError:
            raise UserError(ONNX_HINT) from None
        export_onnx(model, info, output)
    elif args.format == "torchscript":
        export_torchscript(model, info, output)
    elif args.format == "exported_program":
        export_program(model, info, output)
    else:  # int8: calibrated on training images, so it needs the data
        if dm is None:
            raise UserError(f"int8 calibration needs the training images; {why}")
        export_int8(model, dm, output, args.calibration_images)
        info["quantization"] = (
            f"int8 static (torch.ao FX, x86 engine), calibrated on {args.calibration_images} training "
            "images; a TorchScript file: torch.jit.load"
        )
    sidecar = write_sidecar(output, info, args.format)
    print(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB) and {sidecar}")
    if args.format == "onnx":
        images, source = check_images(dm, why, info, sum(CHECK_BATCHES))
        worst, same, total = check_onnx(model, output, images)
        print(
            f"onnx check ({source}, batches of {' and '.join(map(str, CHECK_BATCHES))}): "
            f"max |logit diff| = {worst:.1e}, top-1 identical on {same}/{total} images"
        )
    if args.format == "int8":
        print(check_int8(model, output, dm))
    return output


def export_int8(model: nn.Module, dm, output: Path, count: int) -> None:
    from cnnlab.quantize import calibration_batches, quantize_int8, save_int8

    images, _ = images_of(dm, "train", count)
    quantized = quantize_int8(model, calibration_batches(images))
    save_int8(quantized, images[:2], output)


def check_int8(model: nn.Module, path: Path, dm, count: int = 1000) -> str:
    """Accuracy of the fp32 model and of the saved int8 file on up to ``count`` test images."""
    from cnnlab.quantize import load_int8

    quantized = load_int8(path)
    images, labels = images_of(dm, "test", count)
    with torch.no_grad():
        fp32 = torch.cat([model(b) for b in images.split(256)]).argmax(1)
        int8 = torch.cat([quantized(b) for b in images.split(256)]).argmax(1)
    acc = lambda pred: 100 * (pred == labels).float().mean().item()  # noqa: E731
    return (
        f"int8 check ({len(images)} test images): accuracy fp32 {acc(fp32):.2f}%, int8 {acc(int8):.2f}%; "
        f"top-1 identical on {int((fp32 == int8).sum())}/{len(images)} images"
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cnnlab export",
        description=__doc__.split("\n\n")[0].replace("``", ""),
        epilog="Data for the ONNX check and int8 calibration: the run's config.yaml beside the checkpoint, "
        "--config RECIPE, and --data CLASS / --data.KEY VALUE overrides as in cnnlab fit.",
    )
    p.add_argument("--ckpt_path", required=True, help="checkpoint written by cnnlab fit")
    p.add_argument("--format", required=True, help=f"one of: {', '.join(FORMATS)}")
    p.add_argument("--output", help="model file to write (default: beside the checkpoint)")
    p.add_argument("--config", action="append", default=[], help="recipe naming the data (repeatable)")
    p.add_argument("--mean", type=float, nargs="+", help="normalisation mean, for checkpoints without one")
    p.add_argument("--std", type=float, nargs="+", help="normalisation std, for checkpoints without one")
    p.add_argument(
        "--calibration_images", type=int, default=512, help="int8: training images to calibrate on"
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args, extra = parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    if args.format not in FORMATS:
        raise UserError(f"unknown export format {args.format!r}; choose one of: {', '.join(FORMATS)}")
    overrides = parse_data_overrides(extra)
    if args.output is None:
        args.output = str(Path(args.ckpt_path).with_suffix(FORMATS[args.format]))
    if args.format == "exported_program" and not args.output.endswith(".pt2"):
        raise UserError(f"an exported program is a .pt2 file (torch.export.load expects one): {args.output}")
    export(args, overrides)
