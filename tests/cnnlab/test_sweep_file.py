import re
from pathlib import Path

import pytest
import yaml

from cnnlab.errors import UserError
from cnnlab.sweep_file import load, option_args, parse, sweep_names, trial_name


def sweep(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def test_the_packaged_sweeps_load_by_name():
    assert {"mnist_zoo", "cifar10_lr_wd"} <= set(sweep_names())
    zoo = load("mnist_zoo")
    assert zoo.name == "mnist_zoo" and zoo.base_args() == ["--config", "mnist_cnn"]
    assert (zoo.metric, zoo.direction, zoo.pruner) == ("val/acc", "maximize", "none")
    search = load("cifar10_lr_wd")
    assert search.is_search and search.n_trials == 20 and search.pruner == "median"
    lr = search.search["optimizer.init_args.lr"]
    assert (lr.kind, lr.low, lr.high, lr.log) == ("float", 1e-4, 1e-2, True)


def test_grid_points_are_every_combination_once_per_seed_in_the_files_order(tmp_path):
    path = sweep(tmp_path, "recipe: mnist_cnn\ngrid:\n  model.arch: [lenet5, simplecnn]\n"
                 "  optimizer.init_args.lr: [0.01, 0.001]\nseeds: [0, 1]\n")  # fmt: skip
    points = load(str(path)).points()
    assert [(p.config["model.arch"], p.config["optimizer.init_args.lr"], p.seed) for p in points] == [
        (arch, lr, seed) for arch in ("lenet5", "simplecnn") for lr in (0.01, 0.001) for seed in (0, 1)
    ]
    assert [p.index for p in points] == list(range(8))
    assert points[1].name == "arch=lenet5_lr=0.01_seed=1"
    assert len({p.name for p in points}) == 8
    assert option_args(points[0].config) == ["--model.arch", "lenet5", "--optimizer.init_args.lr", "0.01"]


def test_names_and_command_line_values():
    assert trial_name({"model.arch": "lenet5"}, None) == "arch=lenet5"
    assert (
        trial_name({"model.lr": 0.1, "optimizer.init_args.lr": 0.2}, 3)
        == "model.lr=0.1_optimizer.lr=0.2_seed=3"
    )
    config = {"a.flag": True, "a.none": None, "a.kw": {"width": 2}, "a.x": 1e-05}
    assert option_args(config) == ["--a.flag", "true", "--a.none", "null", "--a.kw", '{"width": 2}',
                                   "--a.x", "1e-05"]  # fmt: skip


def test_a_recipe_path_is_read_beside_the_sweep_file(tmp_path):
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({"trainer": {"max_epochs": 1}}))
    loaded = load(str(sweep(tmp_path, "recipe: mine.yaml\nseeds: [1]\n")))
    assert loaded.base_args() == ["--config", str(tmp_path / "mine.yaml")]
    assert [p.name for p in loaded.points()] == ["seed=1"]


def test_a_bound_that_yaml_leaves_as_text_still_counts_as_a_number(tmp_path):
    # PyYAML reads 1e-4 (no dot) as a string
    path = sweep(tmp_path, "recipe: mnist_cnn\nsearch:\n  optimizer.lr: {low: 1e-4, high: 1e-1, log: true}\n"
                 "n_trials: 3\n")  # fmt: skip
    assert load(str(path)).search["optimizer.lr"].low == 1e-4


def test_the_definition_tells_sweeps_apart(tmp_path):
    a = load(str(sweep(tmp_path, "recipe: mnist_cnn\ngrid: {model.arch: [lenet5]}\nseeds: [0]\n")))
    b = load(
        str(
            sweep(
                tmp_path, "recipe: mnist_cnn\ngrid: {model.arch: [lenet5]}\nseeds: [0]\ndirection: maximize"
            )
        )
    )
    c = load(str(sweep(tmp_path, "recipe: mnist_cnn\ngrid: {model.arch: [lenet5]}\nseeds: [0, 1]\n")))
    assert a.definition == b.definition != c.definition


BAD = {
    "not YAML": ("recipe: [mnist_cnn\n", "not readable YAML"),
    "not a mapping": ("- a\n- b\n", "must be a mapping"),
    "unknown setting": ("recipe: mnist_cnn\nseed: [0]\n", "unknown setting 'seed' (did you mean seeds?)"),
    "no recipe": ("grid: {model.arch: [lenet5]}\n", "names no recipe"),
    "unknown recipe": ("recipe: no_such_recipe\nseeds: [0]\n", "neither a file nor one of cnnlab's recipes"),
    "grid value not a list": ("recipe: mnist_cnn\ngrid: {model.arch: lenet5}\n", "needs a list of values"),
    "seeds not whole": ("recipe: mnist_cnn\nseeds: [0, 1.5]\n", "seeds must be a list"),
    "nothing": ("recipe: mnist_cnn\n", "nothing to sweep"),
    "bound of wrong type": (
        "recipe: mnist_cnn\nsearch: {optimizer.lr: {low: abc, high: 0.1}}\nn_trials: 2\n",
        "low must be a number, not 'abc'",
    ),  # fmt: skip
    "bound a list": (
        "recipe: mnist_cnn\nsearch: {optimizer.lr: {low: [1], high: 0.1}}\nn_trials: 2\n",
        "low must be a number",
    ),  # fmt: skip
    "log not boolean": (
        "recipe: mnist_cnn\nsearch: {optimizer.lr: {low: 0.1, high: 1, log: maybe}}\nn_trials: 2\n",
        "log must be true or false",
    ),  # fmt: skip
    "log from zero": (
        "recipe: mnist_cnn\nsearch: {optimizer.lr: {low: 0, high: 1.0, log: true}}\nn_trials: 2\n",
        "a log scale needs low > 0",
    ),  # fmt: skip
    "low above high": (
        "recipe: mnist_cnn\nsearch: {optimizer.lr: {low: 0.5, high: 0.1}}\nn_trials: 2\n",
        "must be below high",
    ),  # fmt: skip
    "search without n_trials": (
        "recipe: mnist_cnn\nsearch: {optimizer.lr: {low: 0.1, high: 1.0}}\n",
        "n_trials",
    ),
    "grid and search": (
        "recipe: mnist_cnn\ngrid: {model.arch: [lenet5]}\nsearch: {optimizer.lr: [0.1]}\nn_trials: 2\n",
        "both a grid and a search",
    ),  # fmt: skip
    "seed in the grid": ("recipe: mnist_cnn\ngrid: {seed_everything: [1, 2]}\n", "cannot be swept"),
    "logger in the grid": (
        "recipe: mnist_cnn\ngrid: {trainer.logger.init_args.name: [a]}\n",
        "cannot be swept",
    ),
    "not a key": ("recipe: mnist_cnn\ngrid: {'--model.arch': [lenet5]}\n", "is not a config key"),
    "bad direction": (
        "recipe: mnist_cnn\nseeds: [0]\ndirection: up\n",
        "direction must be maximize or minimize",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_sweep_files_are_one_user_error_naming_the_problem(case, tmp_path):
    text, message = BAD[case]
    with pytest.raises(UserError, match=re.escape(message)):
        load(str(sweep(tmp_path, text)))


def test_a_missing_sweep_names_the_packaged_ones():
    with pytest.raises(UserError, match="mnist_zoo"):
        load("no_such_sweep")


def test_parse_takes_a_loaded_mapping(tmp_path):
    loaded = parse({"recipe": "mnist_cnn", "seeds": [3]}, tmp_path / "x.yaml")
    assert loaded.name == "x" and [p.seed for p in loaded.points()] == [3]
