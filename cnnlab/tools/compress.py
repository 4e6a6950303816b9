"""``cnnlab compress``: a checkpoint's deployable variants measured side by side, as a Markdown table.

    cnnlab compress --ckpt_path CKPT [--pruned CKPT] [--student CKPT] [--qat CKPT] [--output report.md]

Variants: the fp32 model, its int8 quantization (calibrated on training images), its ONNX export in
onnxruntime, and optionally a pruned and a distilled student checkpoint, and the int8 model of a
quantization-aware fine-tuning of it (``--qat``: its own trained ranges, no calibration). For each: test
accuracy, parameters (and non-zero ones), size of the saved file, and CPU latency per image at batch 1
and 64. All variants run in one process, one after another in alternating rounds, and the median of the
rounds is reported, so the ratios hold even on a busy machine.
"""

import datetime
import gzip
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import DataError, UserError, writable_folder
from cnnlab.export_formats import (
    ONNX_HINT,
    deployable,
    export_onnx,
    export_torchscript,
    int8_model,
    onnx_session,
)
from cnnlab.lightning_cli import read_recipe
from cnnlab.models import read_checkpoint
from cnnlab.models.quantization import load_int8, save_int8
from cnnlab.provenance import cpu_name
from cnnlab.tables import markdown_cell
from cnnlab.tools import tool_parser
from cnnlab.tools.export import fitting_images

BATCHES = (1, 64)


@dataclass
class Variant:
    name: str
    run: object  # float images in [0, 1] -> logits
    path: Path
    params: int
    nonzero: int
    results: dict = field(default_factory=dict)


def count_params(model: nn.Module) -> tuple[int, int]:
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(int((p != 0).sum()) for p in params)


def torch_variant(name: str, model: nn.Module, info: dict, folder: Path) -> Variant:
    """An fp32 model, run eagerly; its file is its TorchScript export."""
    path = folder / f"{name}.pt"
    export_torchscript(model, info, path)
    return Variant(name, model, path, *count_params(model))


def int8_variant(name: str, model: nn.Module, calibration: torch.Tensor, folder: Path) -> Variant:
    """``int8_model`` of ``model``: post-training, or a quantization-aware model's own ranges."""
    path = folder / f"{name.split()[0].replace('-', '_')}.pt"
    save_int8(int8_model(model, calibration), calibration[:2], path)
    return Variant(name, load_int8(path), path, *count_params(model))


def onnx_variant(model: nn.Module, info: dict, folder: Path, threads: int) -> Variant:
    path = folder / "fp32.onnx"
    export_onnx(model, info, path)
    session = onnx_session(path)
    if threads:  # a fresh session with the same thread count as torch, for a fair comparison
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(["logits"], {"images": images.numpy()})[0])

    return Variant("ONNX (onnxruntime)", run, path, *count_params(model))


def accuracy(variant: Variant, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        logits = torch.cat([variant.run(batch) for batch in images.split(256)])
    return (logits.argmax(1) == labels).float().mean().item()


def measure_latency(variants: list[Variant], images: torch.Tensor, rounds: int) -> None:
    """Median ms per image at each batch size; each round times every variant once, in turn."""
    for size in BATCHES:
        batch = images[:size].contiguous()
        calls = max(1, 64 // size)  # about 64 images per timing, so a timing is not a single call
        times = {v.name: [] for v in variants}
        with torch.no_grad():
            for v in variants:  # warm-up: first calls allocate and pick kernels
                for _ in range(3):
                    v.run(batch)
            for _ in range(rounds):
                for v in variants:
                    start = time.perf_counter()
                    for _ in range(calls):
                        v.run(batch)
                    times[v.name].append((time.perf_counter() - start) * 1000 / (calls * size))
        for v in variants:
            v.results[f"ms{size}"] = statistics.median(times[v.name])


def file_size(path: Path) -> tuple[float, float]:
    """Size on disk and gzip-compressed size in MB (the second shows what pruned zeros save)."""
    data = path.read_bytes()
    return len(data) / 1e6, len(gzip.compress(data, compresslevel=6)) / 1e6


def markdown(variants: list[Variant], header: list[str]) -> str:
    base = variants[0]
    rows = [
        "| variant | accuracy | params | non-zero | size MB | gzip MB | smaller by "
        "| ms/img b1 | ms/img b64 | speed-up b1 | speed-up b64 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in variants:
        r = v.results
        rows.append(
            f"| {markdown_cell(v.name)} | {100 * r['acc']:.2f}% | {v.params:,} | {v.nonzero:,} "
            f"| {r['mb']:.3f} "
            f"| {r['gz']:.3f} | {base.results['mb'] / r['mb']:.2f}x "
            f"| {r['ms1']:.3f} | {r['ms64']:.4f} "
            f"| {base.results['ms1'] / r['ms1']:.2f}x | {base.results['ms64'] / r['ms64']:.2f}x |"
        )
    return "\n".join([*header, "", *rows, ""])


def compress(args, recipe_args: list[str]) -> str:
    if args.threads:
        torch.set_num_threads(args.threads)
    model, info = deployable(read_checkpoint(args.ckpt_path))
    dm = read_recipe(recipe_args, args.ckpt_path).datamodule
    try:
        images, labels = fitting_images(dm, "test", args.limit or 10**9, info)
        calibration, _ = fitting_images(dm, "train", args.calibration_images, info)
    except DataError as err:
        raise UserError(f"the compression report needs the test and training images; {err}") from err
    writable_folder(Path(args.output).resolve().parent, "--output")
    folder = writable_folder(
        Path(args.artifacts or Path(args.output).with_suffix("")).resolve(), "--artifacts"
    )
    print(f"compress: {len(images)} test images, {len(calibration)} calibration images; files in {folder}")

    variants = [torch_variant("fp32", model, info, folder), int8_variant("int8", model, calibration, folder)]
    try:
        variants.append(onnx_variant(model, info, folder, args.threads))
    except UserError as err:
        if str(err) != ONNX_HINT:
            raise
        print(f"compress: notice: no ONNX row ({err})")
    except ModuleNotFoundError as err:  # onnxruntime without onnx or onnxscript, which the exporter needs
        print(f"compress: notice: no ONNX row ({err}; {ONNX_HINT.split('; ')[1]})")
    for name, ckpt in (("pruned", args.pruned), ("student", args.student), ("qat", args.qat)):
        if ckpt:
            other, other_info = deployable(read_checkpoint(ckpt))
            if other_info["input_size"] != info["input_size"]:
                raise UserError(
                    f"--{name} takes {other_info['input_size']} inputs, the model {info['input_size']}"
                )
            if name == "qat":
                variants.append(int8_variant(f"int8-qat ({other_info['arch']})", other, calibration, folder))
            else:
                variants.append(torch_variant(f"{name} ({other_info['arch']})", other, other_info, folder))
    for v in variants:
        v.results["acc"] = accuracy(v, images, labels)
        v.results["mb"], v.results["gz"] = file_size(v.path)
    measure_latency(variants, images, args.rounds)

    threads = torch.get_num_threads()
    header = [
        f"# Compression report: {info['arch']}",
        "",
        f"- checkpoint: `{info['checkpoint']}`",
        f"- accuracy on {len(images)} test images; int8 calibrated on {len(calibration)} training images",
        f"- latency: CPU `{cpu_name()}`, {threads} thread(s), torch {torch.__version__}; median of "
        f"{args.rounds} alternating rounds per batch size, per image",
        f"- files: `{folder}` (fp32, pruned, student: TorchScript; int8, int8-qat: TorchScript with int8 "
        "weights)",
        f"- measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
    ]
    report = markdown(variants, header)
    Path(args.output).write_text(report)
    print(report)
    print(f"wrote {args.output}")
    return report


def parser():
    p = tool_parser("compress", "Data: the run's config.yaml beside the checkpoint.")
    p.add_argument("--ckpt_path", required=True, help="the fp32 checkpoint written by cnnlab fit")
    p.add_argument("--pruned", help="a pruned checkpoint of the same model, for its row")
    p.add_argument("--student", help="a distilled student checkpoint, for its row")
    p.add_argument("--qat", help="a quantization-aware checkpoint of the model, for its int8 row")
    p.add_argument("--output", default="compression_report.md", help="Markdown file to write")
    p.add_argument("--artifacts", help="folder for the measured model files (default: OUTPUT without .md)")
    p.add_argument("--limit", type=int, help="test images for accuracy (default: the whole test split)")
    p.add_argument("--calibration_images", type=int, default=512, help="training images for int8")
    p.add_argument("--rounds", type=int, default=7, help="alternating timing rounds per batch size")
    p.add_argument(
        "--threads", type=int, default=1, help="CPU threads for every variant (0: torch's default)"
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args, recipe_args = parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    compress(args, recipe_args)
