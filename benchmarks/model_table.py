"""The README's recipe table, docs/results.md and each recipe's "Measured:" header line, generated from
``benchmarks/results.yaml``.

    python -m benchmarks.model_table            # print the table and the page
    python -m benchmarks.model_table --write    # write them into README.md (between its markers), docs/
                                                # and the recipes' headers

The README's table has one short row per recipe: its newest full-length result (the mean and standard
deviation over seeds where several were run), or "not measured yet" beside the published reference.
The results page has every run with its command, hardware, load, date and commit (full-length runs in
the main table, shortened ones apart, labelled with their budget), the architectures' parameters and
multiply-accumulates (counted as ``cnnlab summary`` counts them), and the dated benchmark figures.
"""

import argparse
import re
import statistics
from pathlib import Path

import yaml

from cnnlab.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("results.yaml")
README, PAGE = ROOT / "README.md", ROOT / "docs" / "results.md"
START, END = "<!-- recipe-table:start -->", "<!-- recipe-table:end -->"

# Published test accuracies of what a recipe trains (original data, full-length training), for comparison
# only: the shared CIFAR-10 JPEG copy costs about one to three points (see ../shared/data/README.md).
REFERENCES = {
    "cifar10_resnet18": "93.02% (kuangliu/pytorch-cifar)",
    "cifar10_resnet56": "93.03% (He et al. 2016)",
    "cifar10_vgg16_bn": "92.64% (kuangliu/pytorch-cifar)",
    "cifar10_mobilenetv2": "94.43% (kuangliu/pytorch-cifar)",
    "cifar10_speedrun": "94.0% (airbench94, Jordan 2024)",
    "mnist_lenet5": "99.05% (LeCun et al. 1998)",
}
ARCH_REFERENCES = {
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


def load() -> dict:
    return yaml.safe_load(RESULTS.read_text())


def recipes() -> dict[str, dict]:
    """Every packaged recipe, as YAML data (nothing it names is imported)."""
    return {
        p.stem: yaml.safe_load(p.read_text()) or {}
        for p in sorted((ROOT / "experiments").glob("*.yaml"))
        if p.stem != "defaults"
    }


def _percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def _seconds(value: float) -> str:
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{value:.0f} s"


def _accuracy(runs: list[dict]) -> str:
    accs = [r["test_acc"] for r in runs]
    if len(accs) == 1:
        return _percent(accs[0])
    return f"{_percent(statistics.mean(accs))} ± {100 * statistics.stdev(accs):.2f} ({len(accs)} seeds)"


def _time_and_hardware(runs: list[dict]) -> tuple[str, str]:
    """The median wall time of runs on one kind of machine; on several, the range of the times and every
    machine (a median across machines would be a time no run took, on no machine in particular)."""
    machines = list(dict.fromkeys(r["hardware"] for r in runs))
    if len(machines) == 1:
        return _seconds(statistics.median(r["wall_s"] for r in runs)), machines[0]
    times = sorted(r["wall_s"] for r in runs)
    return f"{_seconds(times[0])} to {_seconds(times[-1])}", " / ".join(machines)


def newest_full_runs(runs: list[dict], recipe: str) -> list[dict]:
    """The recipe's own result: its newest full-length run of each seed (a record without ``seed`` ran
    the recipe's own), leaving out control variants (an option changed, such as distillation without its
    teacher) and runs marked ``superseded`` (the recipe changed after them)."""
    newest: dict[object, dict] = {}
    for run in runs:
        own = run["recipe"] == recipe and run.get("full_length")
        if not own or run.get("variant") or run.get("superseded"):
            continue
        seed = run.get("seed")
        if seed not in newest or str(run["date"]) >= str(newest[seed]["date"]):
            newest[seed] = run
    return list(newest.values())


def _arch_of(recipe: dict) -> str:
    model = (recipe.get("model") or {}).get("init_args") or {}
    return str(model.get("arch", ""))


# The data sets' own spelling of the data modules' names.
DATA_NAMES = {
    "CIFAR10": "CIFAR-10",
    "CIFAR100": "CIFAR-100",
    "FashionMNIST": "Fashion-MNIST",
    "STL10": "STL-10",
}


def _data_of(recipe: dict) -> str:
    name = str((recipe.get("data") or {}).get("class_path", "")).rsplit(".", 1)[-1].removesuffix("DataModule")
    return DATA_NAMES.get(name, name)


def recipe_rows(results: dict) -> list[list]:
    rows = []
    for name, recipe in recipes().items():
        runs = newest_full_runs(results["runs"], name)
        epochs = (recipe.get("trainer") or {}).get("max_epochs", 10)
        if runs:
            time, hardware = _time_and_hardware(runs)
            accuracy = _accuracy(runs)
        else:
            reference = REFERENCES.get(name)
            accuracy = "not measured yet" + (f" (published {reference.split(' (')[0]})" if reference else "")
            time, hardware = "", ""
        rows.append([f"`{name}`", _arch_of(recipe), _data_of(recipe), accuracy, epochs, time, hardware])
    return rows


def readme_table(results: dict) -> str:
    header = ["recipe", "architecture", "data", "test accuracy", "epochs", "time", "hardware"]
    return markdown_table(header, recipe_rows(results), "lllrrrl")


def _run_rows(runs: list[dict], budget: bool) -> list[list]:
    rows = []
    for r in sorted(runs, key=lambda r: (r["recipe"], r["arch"], str(r["date"]))):
        recipe = f"`{r['recipe']}`" + (f" (superseded: {r['superseded']})" if r.get("superseded") else "")
        arch = r["arch"] + (f", seed {r['seed']}" if r.get("seed") is not None else "")
        row = [recipe, arch, r["data"], _percent(r["test_acc"]), r["epochs"]]
        if budget:
            row.append(r.get("budget", ""))
        row += [
            _seconds(r["wall_s"]),
            r["hardware"],
            r.get("load", ""),
            r["date"],
            r["commit"],
            f"`{r['command']}`",
        ]
        rows.append(row)
    return rows


def architecture_rows() -> list[list]:
    import torch

    from cnnlab.model_card import count_macs
    from cnnlab.models import get_model, list_models

    rows = []
    with torch.no_grad():
        for name in list_models():
            torch.manual_seed(0)
            cifar = get_model(name, num_classes=10, in_channels=3, image_size=32).eval()
            mnist = get_model(name, num_classes=10, in_channels=1, image_size=28).eval()
            params = sum(p.numel() for p in cifar.parameters())
            macs_cifar, macs_mnist = count_macs(cifar, (3, 32, 32)), count_macs(mnist, (1, 28, 28))
            rows.append([f"`{name}`", f"{params / 1e6:.3f}M", f"{macs_cifar / 1e6:,.1f}M",
                         f"{macs_mnist / 1e6:,.1f}M", ARCH_REFERENCES.get(name, "")])  # fmt: skip
    return rows


def results_page(results: dict) -> str:
    runs = results["runs"]
    head = ["recipe", "architecture", "data", "test accuracy", "epochs"]
    tail = ["wall time", "hardware", "load", "date", "commit", "command"]
    full = [r for r in runs if r.get("full_length")]
    short = [r for r in runs if not r.get("full_length")]
    bench = [[f"`{b['name']}`", b["figure"], b["hardware"], b["date"], b["commit"], f"`{b['command']}`"]
             for b in results.get("benchmarks", [])]  # fmt: skip
    return "\n".join(
        [
            "# Results",
            "",
            "Generated by `python -m benchmarks.model_table --write` from `benchmarks/results.yaml`;",
            "do not edit. Test accuracies on the shared copies of the data: exact MNIST, and CIFAR-10 as",
            "JPEG images (quality 75, about one to three points below the original data for the same",
            "recipe). Wall time is the whole `cnnlab fit` process; it depends on the machine and its load,",
            "accuracy does not. To run a row again and compare: `python -m benchmarks.reproduce RECIPE`",
            "(`--list` numbers a recipe's rows, `--record N` picks one).",
            "",
            "## Full-length runs",
            "",
            "Each recipe as written, to its last epoch.",
            "",
            markdown_table([*head, *tail], _run_rows(full, budget=False), "lllrr"),
            "",
            "## Shortened runs",
            "",
            "Fewer epochs or steps than the recipe (the schedule compressed into them): not comparable with",
            "published figures, and not a ranking of the architectures.",
            "",
            markdown_table([*head, "budget", *tail], _run_rows(short, budget=True), "lllrr"),
            "",
            "## Architectures",
            "",
            "Parameters for 10 classes and multiply-accumulates per image, as `cnnlab summary` counts them;",
            "published CIFAR-10 accuracies for comparison.",
            "",
            markdown_table(
                ["architecture", "params", "MACs 3x32x32", "MACs 1x28x28", "published CIFAR-10"],
                architecture_rows(),
                "lrrrl",
            ),
            "",
            "## Benchmark figures",
            "",
            "Medians and ratios of side-by-side runs (`docs/speed.md` says what each benchmark measures).",
            "",
            markdown_table(["benchmark", "figure", "hardware", "date", "commit", "command"], bench),
            "",
        ]
    )


MEASURED = "# Measured: "


def measured_line(results: dict, name: str) -> str:
    """The header line of recipe ``name`` that states its newest full-length result, hardware and time."""
    runs = newest_full_runs(results["runs"], name)
    if not runs:
        return f"{MEASURED}not yet run to its end (docs/results.md)."
    time, hardware = _time_and_hardware(runs)
    epochs = runs[0]["epochs"]
    return (
        f"{MEASURED}{_accuracy(runs)} test accuracy in {epochs} epochs, {time} on a {hardware} "
        "(docs/results.md)."
    )


def with_measured_line(text: str, line: str) -> str:
    """A recipe's text with its measured line replaced, or added at the end of its leading comments."""
    lines = text.splitlines(keepends=True)
    for i, old in enumerate(lines):
        if old.startswith(MEASURED):
            lines[i] = line + "\n"
            return "".join(lines)
    header = 0
    while header < len(lines) and lines[header].startswith("#"):
        header += 1
    return "".join([*lines[:header], line + "\n", *lines[header:]])


def write_recipe_headers(results: dict) -> None:
    for name in recipes():
        path = ROOT / "experiments" / f"{name}.yaml"
        text = path.read_text()
        new = with_measured_line(text, measured_line(results, name))
        if new != text:
            path.write_text(new)


def write_readme(table: str) -> None:
    body = README.read_text()
    new = re.sub(f"{re.escape(START)}.*{re.escape(END)}", f"{START}\n{table}\n{END}", body, flags=re.S)
    if START not in body:
        raise SystemExit(f"README.md has no {START} ... {END} markers")
    README.write_text(new)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.model_table", description=__doc__.split("\n\n")[0])
    p.add_argument("--write", action="store_true", help="write the table, page and headers")
    args = p.parse_args()
    results = load()
    table, page = readme_table(results), results_page(results)
    print(table, page, sep="\n\n")
    if args.write:
        write_readme(table)
        write_recipe_headers(results)
        PAGE.parent.mkdir(exist_ok=True)
        PAGE.write_text(page)


if __name__ == "__main__":
    main()
