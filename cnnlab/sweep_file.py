"""Sweep files, read as plain data: a base recipe, a grid of config values, seeds, an optional search.

    recipe: mnist_cnn                # a recipe name, or a path (relative to the sweep file)
    grid:                            # every combination of these values
      model.arch: [mnist_cnn, lenet5, simplecnn]
    seeds: [0, 1, 2]                 # each combination once per seed
    metric: val/acc                  # default
    direction: maximize              # default
    # search:                        # instead of a grid: Optuna samples these, n_trials times
    #   optimizer.init_args.lr: {low: 1.0e-4, high: 1.0e-1, log: true}
    # n_trials: 20

A sweep file is loaded with ``yaml.safe_load`` and never imports anything: its keys and values become
``cnnlab fit`` command-line options (``--model.arch lenet5``) that go through the one recipe parser, with
its trusted classes only. This module is light (no torch, Lightning or Optuna): ``cnnlab report`` and
``cnnlab sweep --help`` use it.
"""

import difflib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cnnlab import recipes
from cnnlab.errors import UserError

# Beside every trial's TensorBoard events: which sweep, configuration and seed the run is (cnnlab report)
TRIAL_FILE = "sweep_trial.yaml"
KEYS = ("recipe", "grid", "seeds", "search", "n_trials", "metric", "direction", "pruner", "sampler")
DIRECTIONS = ("maximize", "minimize")
PRUNERS = ("median", "none")
SAMPLERS = ("tpe", "random")
# Options a sweep sets itself, or that would stop a command instead of configuring it
RESERVED = ("seed_everything", "trainer.logger", "print_config", "help")
_KEY = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*\+?")


@dataclass(frozen=True)
class Dimension:
    """One search dimension: ``float`` or ``int`` between ``low`` and ``high``, or ``categorical``."""

    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()


@dataclass(frozen=True)
class Point:
    """One trial of a grid: a configuration (config key -> value) and a seed (None: the recipe's)."""

    index: int
    config: dict
    seed: int | None
    name: str


@dataclass
class Sweep:
    path: Path
    recipe: str  # as written in the file
    config: str  # the --config value: a resolved path, or the recipe's name
    grid: dict = field(default_factory=dict)
    seeds: list | None = None
    search: dict = field(default_factory=dict)  # key -> Dimension
    n_trials: int | None = None
    metric: str = "val/acc"
    direction: str = "maximize"
    pruner: str = "none"
    sampler: str = "tpe"

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def is_search(self) -> bool:
        return bool(self.search)

    def points(self) -> list[Point]:
        """The grid's trials in a fixed order: every combination (in the file's order) once per seed."""
        keys = list(self.grid)
        combos = list(itertools.product(*(self.grid[k] for k in keys))) or [()]
        seeds = self.seeds or [None]
        points = [
            Point(i, dict(zip(keys, combo, strict=True)), seed, "")
            for i, (combo, seed) in enumerate(itertools.product(combos, seeds))
        ]
        names = [trial_name(p.config, p.seed) for p in points]
        return [
            Point(p.index, p.config, p.seed, n if names.count(n) == 1 else f"{n}_{p.index}")
            for p, n in zip(points, names, strict=True)
        ]

    def configurations(self) -> list[dict]:
        """The grid's distinct configurations (points without their seeds)."""
        unique = []
        for point in self.points():
            if point.config not in unique:
                unique.append(point.config)
        return unique

    def base_args(self) -> list[str]:
        return ["--config", self.config]

    def keys(self) -> list[str]:
        return [*self.grid, *self.search]

    @property
    def definition(self) -> dict:
        """What the sweep runs, as JSON values: a study records it, and refuses a different sweep."""
        search = {
            k: {n: v for n, v in vars(d).items() if v not in (None, (), False)}
            for k, d in self.search.items()
        }
        settings = {name: getattr(self, name) for name in KEYS if name not in ("grid", "search")}
        return json.loads(json.dumps({**settings, "grid": self.grid, "search": search}, sort_keys=True))


# -- reading --------------------------------------------------------------------------------------------
def sweeps_dir() -> Path:
    """The packaged sweeps (``experiments/sweeps/`` in the repository)."""
    return recipes.recipes_dir() / "sweeps"


def sweep_names() -> list[str]:
    return sorted(p.stem for p in sweeps_dir().glob("*.yaml"))


def resolve(value: str) -> Path:
    """A sweep file: an existing path as given, else the packaged sweep of that name."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    if re.fullmatch(r"[\w.-]+", value):
        packaged = sweeps_dir() / f"{value.removesuffix('.yaml').removesuffix('.yml')}.yaml"
        if packaged.is_file():
            return packaged
    raise UserError(
        f"sweep {value} is neither a file nor one of cnnlab's sweeps; pass a path to a sweep file or a name: "
        f"{', '.join(sweep_names())}"
    )


def load(value: str) -> Sweep:
    """The sweep file ``value`` (a path or a packaged name), checked: one ``UserError`` for bad input."""
    path = resolve(value)
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        reason = " ".join(str(err).split())
        raise UserError(f"sweep file {path} is not readable YAML ({reason}); fix it") from err
    return parse(loaded, path)


def parse(loaded, path: Path) -> Sweep:
    where = f"sweep file {path}"
    if not isinstance(loaded, dict):
        raise UserError(
            f"{where} must be a mapping with recipe, grid or search, seeds, ...; see docs/sweeps.md"
        )
    unknown = [k for k in loaded if k not in KEYS]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), KEYS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UserError(f"{where} has unknown setting {unknown[0]!r}{hint}; it takes {', '.join(KEYS)}")
    recipe = loaded.get("recipe")
    if not isinstance(recipe, str) or not recipe:
        raise UserError(f"{where} names no recipe; add e.g. 'recipe: mnist_cnn' (a recipe name or a path)")
    beside = path.parent / recipe
    if not Path(recipe).is_absolute() and beside.is_file():
        config = str(beside)
    else:
        recipes.resolve(recipe)  # a file, or a packaged recipe's name: one line if neither
        config = recipe
    sweep = Sweep(path=path, recipe=recipe, config=config)
    sweep.grid = _grid(loaded.get("grid"), where)
    sweep.seeds = _seeds(loaded.get("seeds"), where)
    sweep.search = {
        key: dimension(key, spec, where) for key, spec in _mapping(loaded, "search", where).items()
    }
    sweep.metric = _choice(loaded, "metric", None, "val/acc", where)
    sweep.direction = _choice(loaded, "direction", DIRECTIONS, "maximize", where)
    sweep.pruner = _choice(loaded, "pruner", PRUNERS, "median" if sweep.search else "none", where)
    sweep.sampler = _choice(loaded, "sampler", SAMPLERS, "tpe", where)
    n_trials = loaded.get("n_trials")
    if sweep.search:
        if sweep.grid:
            raise UserError(
                f"{where} has both a grid and a search; a search samples categorical values too "
                "(key: {choices: [a, b]}), so move the grid's keys into the search"
            )
        if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
            raise UserError(f"{where}: a search needs n_trials, a whole number of trials (e.g. n_trials: 20)")
        if sweep.seeds and len(sweep.seeds) > 1:
            raise UserError(f"{where}: a search runs each sampled configuration once; give at most one seed")
        sweep.n_trials = n_trials
    elif n_trials is not None:
        raise UserError(f"{where}: n_trials counts a search's trials; this sweep has no search")
    elif not sweep.grid and not sweep.seeds:
        raise UserError(f"{where} has nothing to sweep: give a grid, seeds or a search")
    for key in sweep.keys():
        _check_key(key, where)
    return sweep


def _mapping(loaded: dict, name: str, where: str) -> dict:
    value = loaded.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError(f"{where}: {name} must map config keys to values, e.g. {name}: {{model.arch: ...}}")
    return value


def _grid(value, where: str) -> dict:
    grid = _mapping({"grid": value}, "grid", where)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise UserError(f"{where}: grid key {key} needs a list of values, e.g. {key}: [a, b]")
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise UserError(f"{where}: grid key {key} lists a value twice")
    return dict(grid)


def _seeds(value, where: str) -> list | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)
        or len(set(value)) != len(value)
    ):
        raise UserError(f"{where}: seeds must be a list of distinct whole numbers, e.g. seeds: [0, 1, 2]")
    return list(value)


def _choice(loaded: dict, name: str, allowed, default: str, where: str) -> str:
    value = loaded.get(name, default)
    if not isinstance(value, str) or not value or (allowed and value not in allowed):
        expected = " or ".join(allowed) if allowed else "a logged metric's name, e.g. val/acc"
        raise UserError(f"{where}: {name} must be {expected}, not {value!r}")
    return value


def _check_key(key, where: str) -> None:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise UserError(f"{where}: {key!r} is not a config key (keys are written as on the command line)")
    bare = key.removesuffix("+")
    if any(bare == r or bare.startswith(r + ".") or bare.endswith(".help") for r in RESERVED):
        raise UserError(
            f"{where}: {key} cannot be swept: seeds are set with 'seeds:', and the sweep names the runs "
            "(--trainer.logger.init_args.save_dir on the command line sets their folder)"
        )


def dimension(key: str, spec, where: str) -> Dimension:
    """A search dimension: ``{low, high[, log, step, type]}``, ``{choices: [...]}`` or a list (choices)."""
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, dict):
        raise UserError(
            f"{where}: search key {key} needs {{low: ..., high: ...[, log: true]}} or {{choices: [...]}}"
        )
    if "choices" in spec:
        choices = spec["choices"]
        extra = set(spec) - {"choices"}
        if extra or not isinstance(choices, list) or not choices:
            raise UserError(f"{where}: search key {key}: choices must be a non-empty list, alone")
        if not all(c is None or isinstance(c, (bool, int, float, str)) for c in choices):
            raise UserError(
                f"{where}: search key {key}: choices must be numbers, strings, true/false or null"
            )
        return Dimension("categorical", choices=tuple(choices))
    extra = set(spec) - {"low", "high", "log", "step", "type"}
    if extra:
        raise UserError(f"{where}: search key {key} has unknown setting {sorted(extra)[0]!r}")
    low, high = (_number(key, name, spec.get(name), where) for name in ("low", "high"))
    step = None if spec.get("step") is None else _number(key, "step", spec.get("step"), where)
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise UserError(f"{where}: search key {key}: log must be true or false, not {log!r}")
    kind = spec.get("type") or ("int" if all(isinstance(v, int) for v in (low, high)) else "float")
    if kind not in ("int", "float"):
        raise UserError(f"{where}: search key {key}: type must be int or float, not {kind!r}")
    if kind == "int" and not all(float(v).is_integer() for v in (low, high, step or 1)):
        raise UserError(f"{where}: search key {key}: an int dimension needs whole-number low, high and step")
    if not low < high:
        raise UserError(f"{where}: search key {key}: low ({low}) must be below high ({high})")
    if log and (low <= 0 or step is not None):
        raise UserError(f"{where}: search key {key}: a log scale needs low > 0 and no step")
    if step is not None and step <= 0:
        raise UserError(f"{where}: search key {key}: step must be positive")
    cast = int if kind == "int" else float
    return Dimension(kind, cast(low), cast(high), log, None if step is None else cast(step))


def _number(key: str, name: str, value, where: str) -> float | int:
    """A bound: a number (a string such as 1e-4, which YAML leaves unread, counts as one)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{where}: search key {key}: {name} must be a number, not {value!r}")
    return value


# -- command lines and names ----------------------------------------------------------------------------
def option_value(value) -> str:
    """A value as the command line writes it: the parser reads it back as the same YAML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return value
    return json.dumps(value)


def option_args(config: dict) -> list[str]:
    """``{"model.arch": "lenet5"}`` as ``["--model.arch", "lenet5"]``."""
    return [arg for key, value in config.items() for arg in (f"--{key}", option_value(value))]


def short_key(key: str, keys) -> str:
    """``optimizer.init_args.lr`` as ``lr``, unless another key ends the same way."""
    short = key.removesuffix("+").split(".")[-1]
    clash = [k for k in keys if k.removesuffix("+").split(".")[-1] == short]
    return short if len(clash) <= 1 else key.replace(".init_args", "")


def trial_name(config: dict, seed: int | None) -> str:
    """A grid trial's folder name: ``arch=lenet5_seed=0``."""
    parts = [f"{short_key(k, config)}={_slug(option_value(v))}" for k, v in config.items()]
    if seed is not None:
        parts.append(f"seed={seed}")
    return "_".join(parts) or "run"


def _slug(text: str) -> str:
    return re.sub(r"[^\w.+-]+", "-", text).strip("-")[:40] or "-"


def describe(config: dict) -> str:
    """A configuration as one short line: ``arch=lenet5, lr=0.001``."""
    return ", ".join(f"{short_key(k, config)}={_short(v)}" for k, v in config.items()) or "(recipe as is)"


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return option_value(value)
