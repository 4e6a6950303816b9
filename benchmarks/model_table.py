"""The README's model table: for every registered architecture, parameters, multiply-accumulates (MACs)
per image, CPU inference speed, the CIFAR-10 test accuracy measured here (``benchmarks/results.yaml``,
with the command that produced it) and published reference accuracies; then the MNIST recipes' measured
test accuracies (the ``mnist`` section of the same file).

    python -m benchmarks.model_table            # print the table
    python -m benchmarks.model_table --readme   # also write it into README.md between its markers

MACs are counted as ``cnnlab summary`` counts them (``torch.utils.flop_counter``, FLOPs / 2) for one
3x32x32 and one 1x28x28 image.
Inference: fp32, batch 64, eval mode, median of ``--repeats`` timed batches after two warm-up ones.
"""

import re
import statistics
import time
from pathlib import Path

import torch
import yaml

from benchmarks.common import ROOT, machine, parser, table
from cnnlab.model_card import count_macs
from cnnlab.models import get_model, list_models

RESULTS = Path(__file__).with_name("results.yaml")
START, END = "<!-- model-table:start -->", "<!-- model-table:end -->"

# Published CIFAR-10 test accuracies (original data, full-length training), for comparison only: the
# shared JPEG copy costs about one to three points (see ../shared/data/README.md).
REFERENCES = {
    "resnet20": "91.25% (He et al. 2016, table 6)",
    "resnet32": "92.49% (He et al. 2016)",
    "resnet44": "92.83% (He et al. 2016)",
    "resnet56": "93.03% (He et al. 2016)",
    "resnet110": "93.57% (He et al. 2016)",
    "resnet18": "93.02% (kuangliu/pytorch-cifar)",
    "resnet50": "93.62% (kuangliu/pytorch-cifar)",
    "vgg16_bn": "92.64% (kuangliu/pytorch-cifar, whose VGG16 has batch norm)",
    "mobilenetv2": "94.43% (kuangliu/pytorch-cifar)",
}


def macs(model: torch.nn.Module, shape: tuple[int, ...]) -> float:
    return count_macs(model, shape)  # the same count as `cnnlab summary`


def images_per_second(model: torch.nn.Module, repeats: int) -> float:
    x = torch.randn(64, 3, 32, 32)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 2):
            start = time.perf_counter()
            model(x)
            if i >= 2:
                times.append(time.perf_counter() - start)
    return 64 / statistics.median(times)


def measured(name: str, results: dict) -> tuple[str, str]:
    run = results.get(name)
    if not run:
        return "not run yet", ""
    return f"{run['test_acc'] * 100:.2f}% ({run['epochs']} ep., {run['hardware']})", f"`{run['command']}`"


def rows(repeats: int) -> list[list]:
    results = yaml.safe_load(RESULTS.read_text()) if RESULTS.is_file() else {}
    out = []
    for name in list_models():
        torch.manual_seed(0)
        cifar = get_model(name, num_classes=10, in_channels=3, image_size=32).eval()
        mnist = get_model(name, num_classes=10, in_channels=1, image_size=28).eval()
        acc, command = measured(name, results)
        out.append([
            f"`{name}`", f"{sum(p.numel() for p in cifar.parameters()) / 1e6:.3f}M",
            f"{macs(cifar, (3, 32, 32)) / 1e6:,.1f}M", f"{macs(mnist, (1, 28, 28)) / 1e6:,.1f}M",
            f"{images_per_second(cifar, repeats):,.0f}", acc, REFERENCES.get(name, ""), command,
        ])  # fmt: skip
    return out


def mnist_rows() -> list[list]:
    results = yaml.safe_load(RESULTS.read_text()) if RESULTS.is_file() else {}
    return [
        [f"`{recipe}`", f"`{run['arch']}`", f"{run['test_acc'] * 100:.2f}%", run["epochs"],
         f"{run['wall_s']:,} s", run["hardware"], f"`{run['command']}`"]
        for recipe, run in results.get("mnist", {}).items()
    ]  # fmt: skip


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    header = ["architecture", "params (10 classes)", "MACs 3x32x32", "MACs 1x28x28", "CPU images/s",
              "CIFAR-10 test acc. (here)", "published CIFAR-10", "command"]  # fmt: skip
    text = f"{table(header, rows(args.repeats))}\n\nCPU images/s: fp32 inference, batch 64, {machine()}."
    mnist = ["MNIST recipe", "architecture", "test acc. (here)", "epochs", "wall (whole process)",
             "hardware", "command"]  # fmt: skip
    title = "MNIST recipes (10,000 test images; a shortened run says so under hardware)"
    text += f"\n\n{title}:\n\n{table(mnist, mnist_rows())}"
    print(text)
    if args.readme:
        readme = ROOT / "README.md"
        body = readme.read_text()
        new = re.sub(f"{START}.*{END}", f"{START}\n{text}\n{END}", body, flags=re.S)
        if new == body and START not in body:
            raise SystemExit(f"README.md has no {START} ... {END} markers")
        readme.write_text(new)


if __name__ == "__main__":
    main()
