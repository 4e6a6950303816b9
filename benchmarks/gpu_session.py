"""The GPU session: one prepared command for the few minutes of a GPU machine (issue 21).

On a CUDA machine, within ``--minutes`` (9) from its start: installs the carried wheels and this checkout
(``--install DIR``), restores the CIFAR-10 JPEG copy from its pack, then

1. trains airbench94 (the ``airbench`` package's recipe as shipped) and ``cnnlab fit --config
   experiments/cifar10_speedrun.yaml`` alternately, 3 runs each, on the same pixels
   (``benchmarks.time_to_accuracy --gpu``'s comparison), until 45% of the time is spent;
2. runs cifar10_resnet18, cifar10_vgg16_bn, cifar10_resnet56 and cifar10_mobilenetv2 at once on the
   GPU (one after another they would not fit: about twice the time left, by an estimate from their
   sizes), in bf16-mixed, on the image folder with the random crop their CIFAR10DataModule would add,
   each bounded by ``--trainer.max_time`` sized to what is left, and records whether each reached its
   last epoch.

It writes every run as a row of ``benchmarks/results.yaml`` (shortened runs with ``full_length: false``
and their budget) and the comparison as a ``benchmarks:`` entry into ``OUT/gpu_session.yaml`` (``--out``,
default ``$OUT``), after every run, and prints a table. ``--dry-run`` runs the same code on the CPU with
tiny budgets in under 3 minutes: a tiny generated image folder, packed and restored; 2 runs each of a
tenth of an airbench94 epoch (batch 5) and of one cnnlab epoch; the four recipes for one epoch. On
the CPU, only what ties airbench to CUDA is replaced (its timer events, ``torch.cuda.synchronize``,
``Module.cuda`` and its loader's device); it still trains in fp16, which a CPU emulates slowly.

    python -m benchmarks.gpu_session --dry-run [--install /tmp/site-dry]
    python -m benchmarks.gpu_session --install /tmp/site --commit COMMIT   # on the GPU machine

On the device machine (docs/speed.md, "The GPU session"): prepare ``.pack/`` and ``.whl/`` here, then
one ``run`` call with carry ``[".pack", ".whl"]``, timeout_s 600 and the command (COMMIT: this
checkout's ``git rev-parse --short HEAD``; the tree travels without its history)

    set -o pipefail; PYTHONUNBUFFERED=1 python3 -m benchmarks.gpu_session --install /tmp/site \
        --commit COMMIT 2>&1 | tee $OUT/gpu_session.log
"""

import argparse
import contextlib
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import torch
import yaml

from benchmarks import image_pack
from benchmarks.common import EXPERIMENTS, ROOT, table
from benchmarks.time_to_accuracy import (
    AirbenchRun,
    FitFailed,
    FitRun,
    airbench_data,
    airbench_version,
    compare,
    one_run,
    print_comparison,
)

RECIPES = ["cifar10_resnet18", "cifar10_vgg16_bn", "cifar10_resnet56", "cifar10_mobilenetv2"]
PACK = ROOT / ".pack" / "cifar10-jpeg.zpack"
WHEELS = ROOT / ".whl"
DATA = "CIFAR-10 (JPEG copy)"
SHARED_COPY = "../shared/data/cifar10-jpeg"  # how the recorded commands name the restored copy
PRECISION = {"bf16-mixed": "bf16", "bf16-true": "bf16", "16-mixed": "fp16", "32-true": "fp32"}


@dataclass(frozen=True)
class Budget:
    """How much of everything one session does."""

    seconds: float  # the whole session, from its start (the install included) to its results
    repeats: int  # airbench94 and cifar10_speedrun runs each
    comparison_share: float  # the comparison starts no pair that would end after this share of the time
    recipe_margin: float  # seconds of a recipe's process besides --trainer.max_time: start-up, the test
    closing: float  # seconds kept at the end to write the results
    airbench: dict = field(default_factory=dict)  # handed to airbench_run
    fit_args: tuple = ()  # added to every cnnlab fit
    precision: tuple = ()  # added to the four recipes


GPU = Budget(9 * 60, 3, 0.45, 75, 10, precision=("--trainer.precision", "bf16-mixed"))
# bf16-mixed stays out on the CPU: emulated there, several times slower (cnnlab runs a recipe's as fp32)
DRY = Budget(170, 2, 0.45, 45, 5, {"batch_size": 5, "epochs": 0.1}, ("--trainer.max_epochs", "1"))


def install(site: Path, wheels: Path) -> None:
    """Install the carried wheels (the packages the device image lacks) and this checkout into ``site``,
    then put ``site`` first on this process's import path and its children's (``PYTHONPATH``).

    First, because the checkout's own ``cnnlab/`` folder, first on the path when run from the root,
    would otherwise shadow the installed package, whose ``cnnlab.models`` and ``cnnlab.datamodules``
    the installation maps from ``models/`` and ``datamodules/``. The checkout is built from a copy, so
    that no ``build/`` folder left from an older tree slips stale modules into the installation."""
    if "cnnlab" in sys.modules:
        raise RuntimeError("install() must run before anything imports cnnlab")
    start = time.monotonic()
    found = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    source = Path(tempfile.mkdtemp(prefix="cnnlab-source-")) / "cnnlab"
    skip = shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "lightning_logs", "data")
    shutil.copytree(ROOT, source, ignore=skip)
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-build-isolation",
           "--no-compile", "--no-cache-dir", "--upgrade", "--target", str(site)]  # fmt: skip
    subprocess.run([*pip, *map(str, found), str(source)], check=True)
    shutil.rmtree(source.parent)
    names = ", ".join(w.name.split("-")[0] for w in found) or "no wheels"
    print(f"installed {names} and cnnlab into {site} ({time.monotonic() - start:.0f} s)", flush=True)
    sys.path.insert(0, str(site))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))


def tiny_pack(folder: Path) -> Path:
    """The dry run's data: 10 classes of 32x32 images, 10 training and 1 test image each, packed as the
    CIFAR-10 copy is."""
    from tests.fakedata import CIFAR_CLASSES, make_image_folder

    make_image_folder(folder / "tiny", classes=CIFAR_CLASSES, n_train=10, n_test=1, size=32)
    image_pack.pack(folder / "tiny", folder / "tiny.zpack")
    return folder / "tiny.zpack"


class WallClockEvent:
    """``torch.cuda.Event``'s timing on the CPU: ``elapsed_time`` in milliseconds."""

    def __init__(self, enable_timing: bool = False):
        self.at = None

    def record(self, stream=None) -> None:
        self.at = time.perf_counter()

    def elapsed_time(self, end: "WallClockEvent") -> float:
        return 1e3 * (end.at - self.at)


@contextlib.contextmanager
def airbench_on_cpu():
    """airbench94 on the CPU for the dry run, with only what ties it to CUDA replaced: its timer events,
    ``torch.cuda.synchronize``, ``Module.cuda`` (a no-op) and its loader's default device (``gpu=0``)."""
    from airbench.utils import CifarLoader

    on_cpu = (*CifarLoader.__init__.__defaults__[:-1], "cpu")
    with (
        mock.patch("torch.cuda.Event", WallClockEvent),
        mock.patch("torch.cuda.synchronize", lambda *args, **kwargs: None),
        mock.patch.object(torch.nn.Module, "cuda", lambda self, *args, **kwargs: self),
        mock.patch.object(CifarLoader.__init__, "__defaults__", on_cpu),
    ):
        yield


def max_time(seconds: float) -> str:
    """``--trainer.max_time``'s DD:HH:MM:SS."""
    minutes, secs = divmod(int(seconds), 60)
    return f"00:{minutes // 60:02d}:{minutes % 60:02d}:{secs:02d}"


def shown(args: list[str], cifar: str) -> str:
    """A command line as recorded: the restored copy named as the shared copy it restores."""
    return " ".join(SHARED_COPY if a == cifar else a for a in args)


class Session:
    """The rows measured so far, written to ``OUT/gpu_session.yaml`` after each one, and the lines of
    the closing table."""

    def __init__(self, out: Path, commit: str, dry: bool):
        self.file, self.commit, self.dry = out / "gpu_session.yaml", commit, dry
        self.runs, self.benchmarks, self.failures, self.lines = [], [], [], []
        self.date = datetime.date.today().isoformat()
        out.mkdir(parents=True, exist_ok=True)

    def load(self, on_gpu: str) -> str:
        return f"loadavg {os.getloadavg()[0]:.1f}; " + ("CPU dry run" if self.dry else on_gpu)

    def write(self) -> None:
        saved = {"runs": self.runs, "benchmarks": self.benchmarks}
        self.file.write_text(yaml.safe_dump(saved, sort_keys=False, width=120))

    def add(self, row: dict, epochs: str, finished: str, run) -> None:
        self.runs.append({**row, "commit": self.commit, "date": self.date})
        acc, train, wall = f"{run.test_acc * 100:.2f}", f"{run.train_s:.2f}", f"{run.wall_s:.1f}"
        self.lines.append([row["recipe"], row["arch"], acc, epochs, finished, train, wall, row["hardware"]])
        self.write()

    def failed(self, name: str, error: BaseException) -> None:
        text = str(error).strip().splitlines() or [type(error).__name__]
        print(f"{name}: " + "\n".join(text[:1] + text[-15:]), flush=True)
        self.failures.append(name)
        how = "stopped at the deadline" if "was stopped after" in text[0] else "failed"
        self.lines.append([name, "", how, "", "", "", "", ""])

    def airbench_row(self, run: AirbenchRun, index: int, hardware: str, options: dict) -> None:
        from airbench.lib_airbench94 import hyp

        of = hyp["opt"]["train_epochs"]
        epochs = options.get("epochs", of)
        row = {"recipe": "airbench94", "arch": f"airbench94 (airbench {airbench_version()})", "data": DATA}
        row["full_length"] = not options
        if options:
            batch = options.get("batch_size", hyp["opt"]["batch_size"])
            row["budget"] = f"{epochs} of {of} epochs, batch {batch}, dry run"
        command = (
            f"python -m benchmarks.gpu_session (airbench.train94(run={index}) after airbench.warmup94(), "
            "as the package ships them; train_s: its own timer, wall_s: the train94 call)"
        )
        row |= {"epochs": epochs, "test_acc": round(run.test_acc, 4), "wall_s": round(run.wall_s, 1)}
        row |= {
            "train_s": round(run.train_s, 2),
            "hardware": hardware,
            "load": self.load("the GPU to itself"),
        }
        self.add({**row, "command": command}, f"{epochs} of {of}", "yes", run)

    def fit_row(self, name: str, run: FitRun, args: list[str], cifar: str, on_gpu: str) -> None:
        """A ``cnnlab fit`` run as its row: architecture, epochs and device read from its run folder."""
        config = yaml.safe_load((run.run_dir / "config.yaml").read_text())
        device = yaml.safe_load((run.run_dir / "run.yaml").read_text())["device"]
        recipe = yaml.safe_load((EXPERIMENTS / f"{name}.yaml").read_text())
        of = (recipe.get("trainer") or {}).get("max_epochs", 10)  # defaults.yaml's 10 where it sets none
        asked, done = config["trainer"]["max_epochs"], run.full_epochs()
        finished = done == asked
        precision = PRECISION.get(device["precision"], device["precision"])
        row = {"recipe": name, "arch": config["model"]["init_args"]["arch"], "data": DATA}
        row["full_length"] = finished and asked == of
        if not row["full_length"]:
            stopped = "" if finished else ", stopped by --trainer.max_time"
            row["budget"] = f"{done} of {of} epochs{stopped}" + (", dry run" if self.dry else "")
        row |= {"epochs": done, "test_acc": round(run.test_acc, 4), "wall_s": round(run.wall_s, 1)}
        row |= {"train_s": round(run.train_s, 1), "hardware": f"{device['name']} ({precision})"}
        row |= {
            "load": self.load(on_gpu),
            "command": f"cnnlab fit --config experiments/{name}.yaml {shown(args, cifar)}",
        }
        self.add(row, f"{done} of {of}", "yes" if finished else "no", run)


def comparison(
    session: Session, budget: Budget, cifar: str, workdir: Path, until: float, device: str
) -> None:
    """Phase 1: airbench94 against cifar10_speedrun."""
    cpu = airbench_on_cpu() if session.dry else contextlib.nullcontext()
    try:
        with cpu:
            theirs, ours = compare(cifar, workdir, budget.repeats, budget.fit_args, budget.airbench, until)
    except (Exception, FitFailed) as error:  # the recipes still get their time
        traceback.print_exc()
        session.failed("airbench94 / cifar10_speedrun", error)
        return
    for i, run in enumerate(theirs):
        session.airbench_row(run, i, f"{device} (fp16)", budget.airbench)
    args = ["--data", "ImageFolderDataModule", "--data.data_dir", cifar, *budget.fit_args]
    for run in ours:
        session.fit_row("cifar10_speedrun", run, args, cifar, "the GPU to itself")
    verdict = print_comparison(theirs, ours, device)
    session.benchmarks.append({"name": "gpu_session", "figure": verdict,
                               "command": "python -m benchmarks.gpu_session", "hardware": device,
                               "date": session.date, "commit": session.commit})  # fmt: skip
    session.write()


def recipes(session: Session, budget: Budget, cifar: str, workdir: Path, end: float) -> None:
    """Phase 2: the four recipes at once, each bounded by ``--trainer.max_time`` sized to what is left,
    each process stopped at ``end`` (a ``time.monotonic()`` deadline) at the latest."""
    left = end - time.monotonic()
    train_s = left - budget.recipe_margin
    if train_s < 10:
        print(f"{left:.0f} s left: too little for the recipes", flush=True)
        session.failures.append("recipes (no time left)")
        return
    args = ["--data", "ImageFolderDataModule", "--data.data_dir", cifar,
            "--data.crop_padding", "4",  # CIFAR10DataModule's crop, which the image-folder module lacks
            *budget.precision, *budget.fit_args, "--trainer.max_time", max_time(train_s)]  # fmt: skip
    threads = max(1, (os.cpu_count() or 1) // len(RECIPES))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    print(f"\n{', '.join(RECIPES)} at once, --trainer.max_time {max_time(train_s)} each", flush=True)
    with ThreadPoolExecutor(len(RECIPES)) as pool:
        futures = {
            name: pool.submit(one_run, EXPERIMENTS / f"{name}.yaml", args, workdir, left, env)
            for name in RECIPES
        }
        note = f"{len(RECIPES)} runs shared the GPU"
        for name, future in futures.items():
            try:
                session.fit_row(name, future.result(), args, cifar, note)
            except (Exception, FitFailed) as error:
                session.failed(name, error)


def commit_of_checkout() -> str:
    from cnnlab.provenance import git_state

    state = git_state(ROOT)
    return state["commit"][:7] + (" (uncommitted changes)" if state["dirty"] else "") if state else "unknown"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_session",
        description=__doc__.split("\n\n")[0],
        epilog="Read the module's docstring or docs/speed.md for the device call.",
    )
    p.add_argument("--dry-run", action="store_true", help="the same code paths on the CPU, tiny budgets")
    p.add_argument("--install", type=Path, help="pip-install the wheels and this checkout into this folder")
    p.add_argument("--wheels", type=Path, default=WHEELS, help="the carried wheels (default .whl/)")
    p.add_argument(
        "--pack", type=Path, default=PACK, help="the CIFAR-10 JPEG copy's pack (benchmarks.image_pack)"
    )
    p.add_argument(
        "--out", type=Path, help="folder of gpu_session.yaml (default $OUT, else a new temporary one)"
    )
    p.add_argument("--minutes", type=float, help="the session's time (default 9; dry run 170 s)")
    p.add_argument("--commit", help="recorded in each row (default: this checkout's, where it is one)")
    args = p.parse_args(argv)
    start = time.monotonic()
    budget = DRY if args.dry_run else GPU
    seconds = args.minutes * 60 if args.minutes else budget.seconds
    end = start + seconds - budget.closing
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit(
            "no CUDA GPU here: python -m benchmarks.gpu_session --dry-run runs the same code on the CPU"
        )
    if not args.dry_run and not args.pack.is_file():
        raise SystemExit(
            f"no pack at {args.pack}: python -m benchmarks.image_pack pack ../shared/data/cifar10-jpeg {PACK}"
        )
    if args.install:
        install(args.install, args.wheels)
    workdir = Path(tempfile.mkdtemp(prefix="cnnlab-gpu-session-"))
    out = args.out or Path(os.environ.get("OUT") or tempfile.mkdtemp(prefix="cnnlab-gpu-session-out-"))
    session = Session(out, args.commit or commit_of_checkout(), args.dry_run)
    pack = tiny_pack(workdir) if args.dry_run else args.pack
    cifar = str(workdir / "cifar10-jpeg")
    count = image_pack.unpack(pack, Path(cifar))
    airbench_data(cifar, workdir / "cifar10", num_workers=min(8, os.cpu_count() or 1))
    import cnnlab
    from cnnlab.provenance import cpu_name

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else cpu_name()
    print(f"{count:,} images restored and decoded ({time.monotonic() - start:.0f} s) on {device}; "
          f"cnnlab from {Path(cnnlab.__file__).parent}, torch {torch.__version__}", flush=True)  # fmt: skip
    comparison(session, budget, cifar, workdir, start + budget.comparison_share * seconds, device)
    recipes(session, budget, cifar, workdir, end)
    print(f"\n{len(session.runs)} runs in {time.monotonic() - start:.0f} s, written to {session.file}\n")
    header = [
        "recipe",
        "architecture",
        "test accuracy (%)",
        "epochs",
        "finished",
        "training s",
        "wall s",
        "hardware",
    ]
    print(table(header, session.lines))
    if session.failures:
        raise SystemExit(f"failed or stopped: {', '.join(session.failures)}")


if __name__ == "__main__":
    main()
