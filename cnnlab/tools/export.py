"""``cnnlab export``: a trained checkpoint as a stand-alone model file for deployment.

    cnnlab export --ckpt_path CKPT --format onnx|torchscript|exported_program|int8 [--output PATH]

The written model takes float images in [0, 1] and normalises them itself (``cnnlab.export_formats``);
``PATH.json`` beside it names the classes, input size, mean and std. An ONNX file is checked right after
export: onnxruntime runs it on real test images at two batch sizes and the logits are compared with
PyTorch's. The images (for the check, and int8's calibration) come from the data module of the run's
``config.yaml`` beside the checkpoint, read through the recipe parser as ``cnnlab fit`` reads it; recipe
options (``--config``, ``--data.*``) change it.
"""

import sys
from pathlib import Path

from cnnlab.tools import tool_parser

# format -> the default file suffix
FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "exported_program": ".pt2", "int8": ".int8.pt"}
EPILOG = "Data for the ONNX check and int8 calibration: the run's config.yaml beside the checkpoint."


def parser():
    p = tool_parser("export", EPILOG)
    p.add_argument("--ckpt_path", required=True, help="checkpoint written by cnnlab fit")
    p.add_argument("--format", required=True, help=f"one of: {', '.join(FORMATS)}")
    p.add_argument("--output", help="model file to write (default: beside the checkpoint)")
    p.add_argument("--mean", type=float, nargs="+", help="normalisation mean, for checkpoints without one")
    p.add_argument("--std", type=float, nargs="+", help="normalisation std, for checkpoints without one")
    p.add_argument(
        "--calibration_images", type=int, default=512, help="int8: training images to calibrate on"
    )
    return p


def export(args, recipe_args: list[str]) -> Path:
    import torch

    from cnnlab.errors import DataError, UserError, writable_folder
    from cnnlab.export_formats import (
        CHECK_BATCHES,
        ONNX_HINT,
        check_onnx,
        deployable,
        export_onnx,
        export_program,
        export_torchscript,
        write_sidecar,
    )
    from cnnlab.lightning_cli import read_recipe
    from cnnlab.models import read_checkpoint

    ckpt = read_checkpoint(args.ckpt_path)
    model, info = deployable(ckpt, args.mean, args.std)
    dm = read_recipe(recipe_args, args.ckpt_path).datamodule if args.format in ("onnx", "int8") else None
    output = Path(args.output)
    writable_folder(output.parent, "--output")
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
        try:
            calibration, _ = fitting_images(dm, "train", args.calibration_images, info)
        except DataError as err:
            raise UserError(f"int8 calibration needs the training images; {err}") from err
        export_int8(model, calibration, output)
        from cnnlab.models.quantization import is_quantization_aware

        ranges = (
            "the ranges of its quantization-aware training"
            if is_quantization_aware(model)
            else f"calibrated on {len(calibration)} training images"
        )
        info["quantization"] = (
            f"int8 static (torch.ao FX, x86 engine), {ranges}; a TorchScript file: torch.jit.load"
        )
    sidecar = write_sidecar(output, info, args.format)
    print(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB) and {sidecar}")
    if args.format == "onnx":
        try:
            images, _ = fitting_images(dm, "test", sum(CHECK_BATCHES), info)
            source = f"{len(images)} test images"
        except DataError as err:
            print(f"cnnlab export: notice: checking on random images, no test images ({err})")
            torch.manual_seed(0)
            images, source = torch.rand(sum(CHECK_BATCHES), *info["input_size"]), "random images"
        worst, same, total = check_onnx(model, output, images)
        print(
            f"onnx check ({source}, batches of {' and '.join(map(str, CHECK_BATCHES))}): "
            f"max |logit diff| = {worst:.1e}, top-1 identical on {same}/{total} images"
        )
    if args.format == "int8":
        print(check_int8(model, output, dm))
    return output


def fitting_images(dm, split: str, count: int, info: dict):
    """Up to ``count`` images of ``split`` (and labels), checked to be the shape the model takes."""
    from cnnlab.errors import UserError

    images, labels = dm.sample_images(split, count)
    if list(images.shape[1:]) != list(info["input_size"]):
        shape, wanted = ("x".join(map(str, s)) for s in (images.shape[1:], info["input_size"]))
        raise UserError(
            f"the data's images are {shape} but the checkpoint's model takes {wanted}; pass the data it "
            "was trained on (--config RECIPE, --data CLASS, --data.*)"
        )
    return images, labels


def export_int8(model, calibration, output: Path) -> None:
    """The int8 model of ``model`` (``int8_model``) saved to ``output``."""
    from cnnlab.export_formats import int8_model
    from cnnlab.models.quantization import save_int8

    save_int8(int8_model(model, calibration), calibration[:2], output)


def check_int8(model, path: Path, dm, count: int = 1000) -> str:
    """Accuracy of the fp32 model and of the saved int8 file on up to ``count`` test images."""
    import torch

    from cnnlab.models.quantization import load_int8

    quantized = load_int8(path)
    images, labels = dm.sample_images("test", count)  # the shape was checked for the calibration
    with torch.no_grad():
        fp32 = torch.cat([model(b) for b in images.split(256)]).argmax(1)
        int8 = torch.cat([quantized(b) for b in images.split(256)]).argmax(1)
    acc = lambda pred: 100 * (pred == labels).float().mean().item()  # noqa: E731
    return (
        f"int8 check ({len(images)} test images): accuracy fp32 {acc(fp32):.2f}%, int8 {acc(int8):.2f}%; "
        f"top-1 identical on {int((fp32 == int8).sum())}/{len(images)} images"
    )


def main(argv: list[str] | None = None) -> None:
    args, recipe_args = parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    from cnnlab.errors import UserError

    if args.format not in FORMATS:
        raise UserError(f"unknown export format {args.format!r}; choose one of: {', '.join(FORMATS)}")
    if args.output is None:
        args.output = str(Path(args.ckpt_path).with_suffix(FORMATS[args.format]))
    if args.format == "exported_program" and not args.output.endswith(".pt2"):
        raise UserError(f"an exported program is a .pt2 file (torch.export.load expects one): {args.output}")
    export(args, recipe_args)
