"""Where cnnlab's recipes live, and how a ``--config`` value names one.

The recipes (``experiments/*.yaml`` in the repository) and ``defaults.yaml`` ship inside the package as
``cnnlab.experiments``, so an installed cnnlab finds them from any folder: ``--config mnist_lenet5`` is
the packaged recipe, ``--config path/to/file.yaml`` a file. Run folders and recipes written before
cnnlab was installed under one name name classes by their old paths (``models.ImageClassifier``,
``cnnlab.evaluation.EvaluationReport``); ``current_names`` gives their present names.
"""

import re
from importlib import resources
from pathlib import Path

from cnnlab.errors import UserError

SUFFIXES = (".yaml", ".yml")


def recipes_dir() -> Path:
    """The folder of the packaged recipes."""
    return Path(str(resources.files("cnnlab.experiments")))


def defaults_file() -> Path:
    """``defaults.yaml``: read before every recipe, by every command."""
    return recipes_dir() / "defaults.yaml"


def recipe_names() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob("*.yaml") if p.stem != "defaults")


def resolve(value: str) -> str:
    """A ``--config`` value as a file: an existing path as given, else the packaged recipe of that name
    (``mnist_lenet5``, ``mnist_lenet5.yaml``, or ``experiments/mnist_lenet5.yaml`` outside the repository).
    YAML text given inline is left to the parser."""
    path = Path(value).expanduser()
    if path.is_file():
        return value
    if re.fullmatch(r"[\w.-]+", value) or path.parent.name == "experiments":
        # a name, or a repository path (experiments/<name>.yaml, as commands are recorded) run elsewhere
        packaged = recipes_dir() / f"{path.name.removesuffix('.yaml').removesuffix('.yml')}.yaml"
        if packaged.is_file() and packaged.stem != "defaults":
            return str(packaged)
    elif "\n" in value or value.lstrip().startswith("{") or ": " in value:
        return value  # jsonargparse also takes a config as YAML text
    raise UserError(
        f"config {value} is neither a file nor one of cnnlab's recipes; pass a path to a YAML file or a "
        f"recipe name: {', '.join(recipe_names())}"
    )


# -- names of earlier versions ---------------------------------------------------------------------------
# Classes that moved when cnnlab/ was sorted into callbacks/ and tools/, and the two packages that were
# installed under their own top-level names.
_MOVED = {
    "cnnlab.checkpoints.AtomicCheckpointIO": "cnnlab.checkpoint_io.AtomicCheckpointIO",
    "cnnlab.evaluation.EvaluationReport": "cnnlab.callbacks.EvaluationReport",
    "cnnlab.pictures.TensorBoardPictures": "cnnlab.callbacks.TensorBoardPictures",
    "cnnlab.resume.ExactResume": "cnnlab.callbacks.ExactResume",
    "cnnlab.safety.SaveOnInterrupt": "cnnlab.callbacks.SaveOnInterrupt",
    "cnnlab.safety.StopOnNonFiniteLoss": "cnnlab.callbacks.StopOnNonFiniteLoss",
    "cnnlab.runinfo.RunInfo": "cnnlab.callbacks.RunInfo",
    "cnnlab.summary.ModelSummaryFile": "cnnlab.callbacks.ModelSummaryFile",
    "cnnlab.pruning.MagnitudePruning": "cnnlab.callbacks.MagnitudePruning",
    "cnnlab.predict.PredictionWriter": "cnnlab.callbacks.PredictionWriter",
}
_OLD_PACKAGE = re.compile(r"(models|datamodules)((?:\.[a-z_]\w*)*\.[A-Z]\w*)")


def current_name(value: str) -> str:
    """A class path of an earlier cnnlab version (``models.ImageClassifier``) as it is named now
    (``cnnlab.models.ImageClassifier``); any other value as it is."""
    if value in _MOVED:
        return _MOVED[value]
    match = _OLD_PACKAGE.fullmatch(value)
    return f"cnnlab.{match.group(1)}{match.group(2)}" if match else value


def current_names(config):
    """A loaded YAML document with every old class path (a whole string value) renamed."""
    if isinstance(config, dict):
        return {key: current_names(value) for key, value in config.items()}
    if isinstance(config, list):
        return [current_names(value) for value in config]
    return current_name(config) if isinstance(config, str) else config
