"""airbench94's own training code on the pixels cnnlab trains on: the reference for ``cifar10_speedrun``.

The ``airbench`` package (Keller Jordan; ``pip install airbench``) ships airbench94 as ``train94``, written
for one CUDA GPU in fp16. This script runs that code as shipped, on the CPU, changing only what the CPU
needs; the changes are textual substitutions in the package's own source (printed with ``--show``):

  * the device: no ``.cuda()``, tensors loaded to the CPU, CUDA timing events replaced by a wall clock;
  * the number format: fp16 weights and activations become ``--dtype`` (bfloat16 by default, the CPU's
    native 16-bit format: a tenth of an epoch with its evaluation took 394 s in fp16 here, 17 s in bf16;
    float32 is there to measure the choice).
    Its dtype checks sit in its source, which is why this edits the source where
    ``benchmarks.gpu_session``'s CPU dry run (fp16, a few steps) patches objects;
  * the data: airbench's loader reads ``cifar10/train.pt`` and ``test.pt`` (uint8 NHWC images, labels,
    classes), written here from the same decoded pixels cnnlab trains on (``ImageFolderDataModule``'s
    image cache of the shared CIFAR-10 JPEG copy), so a gap between the two is the recipe's, not the data's.

Every hyperparameter, the network, the optimizer, the schedules, lookahead, the augmentation and the
test-time augmentation are airbench94's. Prints airbench's own table (test accuracy per epoch, TTA at the
end) and one summary line; ``--epochs`` shortens the run for a quick check (airbench94: 9.9).

    python -m benchmarks.airbench_reference [--epochs 9.9] [--seed 0] [--dtype bfloat16] [--show]
"""

import argparse
import contextlib
import importlib.util
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import SHARED_DATA, machine
from benchmarks.time_to_accuracy import airbench_data, airbench_result

# (file, original, replacement): each must occur in the shipped source, or the script stops.
SUBSTITUTIONS = [
    ("utils.py", "torch.cuda.Event(enable_timing=True)", "_WallClock()"),
    ("utils.py", "torch.cuda.synchronize()", "None"),
    ("utils.py", "map_location=torch.device(gpu)", "map_location='cpu'"),
    ("utils.py", "self.images.half()", "self.images.to(DTYPE)"),
    ("utils.py", "(torch.half, torch.float)", "(DTYPE, torch.float)"),
    ("lib_airbench94.py", "from .utils import", "from airbench_cpu_utils import"),
    ("lib_airbench94.py", "net.half().cuda()", "net.to(DTYPE)"),
]

PRELUDE = """import torch
from benchmarks.gpu_session import WallClockEvent as _WallClock
DTYPE = torch.{dtype}
"""


def patched_source(package: Path, name: str, dtype: str) -> str:
    source = (package / name).read_text()
    for file, old, new in SUBSTITUTIONS:
        if file != name:
            continue
        if old not in source:
            raise SystemExit(f"airbench's {name} no longer holds {old!r}; this script needs updating")
        source = source.replace(old, new)
    return PRELUDE.format(dtype=dtype) + source


def load_patched(dtype: str):
    spec = importlib.util.find_spec("airbench")
    if spec is None:
        raise SystemExit("needs the airbench package: pip install airbench")
    package = Path(spec.origin).parent
    modules = {}
    for name, module_name in (("utils.py", "airbench_cpu_utils"), ("lib_airbench94.py", "airbench_cpu_94")):
        source = patched_source(package, name, dtype)
        module = type(sys)(module_name)
        module.__file__ = str(package / name)
        sys.modules[module_name] = module
        exec(compile(source, str(package / name), "exec"), module.__dict__)
        modules[name] = module
    return modules["utils.py"], modules["lib_airbench94.py"]


class _Tee(io.TextIOBase):
    """Prints as it goes and keeps a copy, from which airbench's final row is read."""

    def __init__(self, out):
        self.out, self.kept = out, io.StringIO()

    def write(self, text: str) -> int:
        self.kept.write(text)
        return self.out.write(text)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cifar", default=str(SHARED_DATA / "cifar10-jpeg"), help="CIFAR-10 as an image folder")
    p.add_argument("--epochs", type=float, default=None, help="airbench94 trains 9.9 epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--show", action="store_true", help="print the substitutions and exit")
    args = p.parse_args(argv)
    if args.show:
        for file, old, new in SUBSTITUTIONS:
            print(f"airbench/{file}: {old}  ->  {new}")
        return

    torch.manual_seed(args.seed)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="airbench-") as work:
        airbench_data(args.cifar, Path(work) / "cifar10")
        os.chdir(work)  # airbench's loader reads the relative path cifar10/
        try:
            _, lib = load_patched(args.dtype)
            loader = lib.CifarLoader("cifar10", train=True, batch_size=lib.hyp["opt"]["batch_size"],
                                     aug=lib.hyp["aug"], altflip=True)  # fmt: skip
            epochs = lib.hyp["opt"]["train_epochs"] if args.epochs is None else args.epochs
            tee, start = _Tee(sys.stdout), time.perf_counter()
            with contextlib.redirect_stdout(tee):
                lib.train94(loader, epochs=epochs)
            wall = time.perf_counter() - start
        finally:
            os.chdir(cwd)
    acc, seconds = airbench_result(tee.kept.getvalue())
    print(
        f"airbench94 on cnnlab's pixels: test accuracy {acc:.4f} (its TTA), {epochs} epochs, {args.dtype}, "
        f"seed {args.seed}: {seconds:.1f} s by its own timer, {wall:.1f} s wall; {machine()}"
    )


if __name__ == "__main__":
    main()
