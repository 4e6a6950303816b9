"""Re-run a recorded result and put the recorded and the new figure side by side.

``benchmarks/results.yaml`` records every run with the command that made it. This runs that command
again, as a new ``cnnlab fit`` process in a temporary folder (the shared data's ``../shared/data`` in
the command becomes ``--shared``), reads the new run's test accuracy and prints both, with the
difference in points. A shortened record (``full_length: false``) has its shorter budget in its
command, so it is re-run as it was recorded; ``--epochs N`` shortens any record further for a quick
check, and the output then says that the figures are not comparable.

    python -m benchmarks.reproduce mnist_lenet5                 # the latest full-length record
    python -m benchmarks.reproduce cifar10_resnet56 --list      # its records, numbered
    python -m benchmarks.reproduce cifar10_resnet56 --record 2  # one of them
    python -m benchmarks.reproduce mnist_cnn --epochs 1 --dry-run

Exit status 1 when the new accuracy is further than ``--tolerance`` points from the recorded one (same
seed and commit on the same kind of machine give the same figure; other hardware or library versions
move it a little).
"""

import shlex
import sys
import tempfile
from pathlib import Path

import yaml

from benchmarks.common import ROOT, SHARED_DATA, machine, parser, table

RESULTS = ROOT / "benchmarks" / "results.yaml"


def fail(message: str):
    """Bad input: one line, exit status 2 (status 1 means the figure was not reproduced)."""
    print(f"benchmarks.reproduce: error: {message}", file=sys.stderr)
    sys.exit(2)


def records(results: Path, recipe: str) -> list[dict]:
    """The recipe's records: full-length ones as written first, then shortened ones, then superseded
    ones (the recipe changed after them), then control variants; the latest first within each kind."""
    runs = [r for r in yaml.safe_load(results.read_text())["runs"] if r["recipe"] == recipe]
    newest_first = sorted(runs, key=lambda r: str(r["date"]), reverse=True)  # ISO dates sort as text
    # stable: dates kept within each kind
    return sorted(
        newest_first,
        key=lambda r: (bool(r.get("variant")), bool(r.get("superseded")), not r.get("full_length", False)),
    )


def _percent(accuracy: float) -> str:
    return f"{100 * accuracy:.2f}%"


def _from_root(word: str) -> str:
    """A relative path in a recorded command (a checkpoint to start from) is relative to the repository,
    where the commands were run; the new run runs in a temporary folder."""
    if "/" in word and not word.startswith(("/", "-")) and (ROOT / word).exists():
        return str((ROOT / word).resolve())
    return word


def fit_arguments(record: dict, shared: Path, epochs: int | None) -> tuple[str, list[str]]:
    """The record's ``--config`` value and the rest of its ``cnnlab fit`` arguments, with the shared data
    where this machine has it."""
    words = shlex.split(record["command"])
    if words[:2] != ["cnnlab", "fit"]:
        fail(f"the record's command is not a cnnlab fit: {record['command']}")
    words = [_from_root(w.replace("../shared/data", str(shared))) for w in words[2:]]
    if "--config" not in words:
        fail(f"the record's command names no --config: {record['command']}")
    at = words.index("--config")
    config, rest = words[at + 1], words[:at] + words[at + 2 :]
    if epochs is not None:
        rest += ["--trainer.max_epochs", str(epochs)]
    return config, rest


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("recipe", help="a recipe with records in results.yaml (e.g. mnist_lenet5)")
    p.add_argument("--record", type=int, default=1, help="which record (see --list; default 1)")
    p.add_argument("--list", action="store_true", help="list the recipe's records and stop")
    p.add_argument("--epochs", type=int, help="train for this many epochs instead (a quick, shortened check)")
    p.add_argument("--shared", default=str(SHARED_DATA), help="the folder the records call ../shared/data")
    p.add_argument("--tolerance", type=float, default=0.5, help="points of accuracy the two may differ by")
    p.add_argument("--results", default=str(RESULTS), help="default benchmarks/results.yaml")
    p.add_argument("--dry-run", action="store_true", help="print the command and stop")
    args = p.parse_args(argv)

    found = records(Path(args.results), args.recipe)
    if not found:
        names = sorted({r["recipe"] for r in yaml.safe_load(Path(args.results).read_text())["runs"]})
        fail(f"no record of {args.recipe}; recorded: {', '.join(names)}")
    if args.list or not 1 <= args.record <= len(found):
        rows = [
            [i, r["arch"], "yes" if r.get("full_length") else r.get("budget", "no"), _percent(r["test_acc"]),
             r["date"], r["commit"]]
            for i, r in enumerate(found, 1)
        ]  # fmt: skip
        print(table(["record", "architecture", "full length", "test accuracy", "date", "commit"], rows))
        if args.list:
            return
        fail(f"--record must be 1 to {len(found)}")
    record = found[args.record - 1]
    config, rest = fit_arguments(record, Path(args.shared), args.epochs)
    print(f"recorded: {record['command']}  ({record['date']}, {record['commit']}, {record['hardware']})")
    print(f"running:  cnnlab fit --config {shlex.join([config, *rest])}")
    if args.dry_run:
        return

    from benchmarks.time_to_accuracy import one_run  # imports torch: not needed for --list and --dry-run
    from cnnlab.recipes import resolve

    with tempfile.TemporaryDirectory() as work:
        run = one_run(Path(resolve(config)), rest, Path(work))
    # in the hundredths of a point that results are recorded in (TensorBoard keeps float32 figures)
    difference = round(100 * (run.test_acc - record["test_acc"]), 2) + 0.0
    comparable = args.epochs is None
    rows = [
        ["recorded", _percent(record["test_acc"]), record["epochs"], f"{record['wall_s']:.0f}",
         record["hardware"]],
        ["new", _percent(run.test_acc), len(run.epoch_s), f"{run.wall_s:.0f}", machine()],
    ]  # fmt: skip
    print(table(["", "test accuracy", "epochs", "wall s", "hardware"], rows))
    if not comparable:
        print(f"shortened to {args.epochs} epochs: the two figures are not comparable")
        return
    verdict = "within" if abs(difference) <= args.tolerance else "further than"
    print(f"difference {difference:+.2f} points: {verdict} the tolerance of {args.tolerance} points")
    if verdict != "within":
        sys.exit(1)


if __name__ == "__main__":
    main()
