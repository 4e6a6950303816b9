"""The one reader of recipes: ``CNNLabCLI``, LightningCLI with cnnlab's defaults (``cnnlab.cli`` runs it).

``cnnlab fit|validate|test|predict --config <recipe>`` as with any LightningCLI, plus:

* ``defaults.yaml`` (shipped in the package) is read first, so recipes hold only what differs; a
  ``--config`` value is a file or the name of a packaged recipe (``--config mnist_lenet5``);
* runs log to ``lightning_logs/<recipe name>/version_N`` (the name is the last ``--config`` file's);
* ``--ckpt_path last`` resumes the newest run of that recipe in its own ``version_N`` folder;
* with ``--ckpt_path``, the model comes from the checkpoint, and ``predict`` needs nothing else: the
  checkpoint holds the classes, channels, image size and normalisation;
* after ``fit``, the best checkpoint (by ``val/acc``) is tested and the metrics printed;
* ``predict --data.predict_dir FILES_OR_FOLDER`` writes the predictions to a CSV (``--prediction.*``);
* ``num_classes``, ``in_channels``, ``image_size``, ``class_names``, ``mean`` and ``std`` go from the
  data module to the model; ``--optimizer`` and ``--lr_scheduler`` go into the model's hyperparameters;
* a file never makes cnnlab import a class outside ``TRUSTED_IMPORTS`` (cnnlab's packages, torch's
  optimizers and schedulers, Lightning's callbacks, loggers and plugins): anything else is refused with
  one line before it is imported.

Every command, cnnlab's tools (``cnnlab.tools``) and the Python API (``cnnlab.cli.build``) read recipes
through ``CNNLabCLI``. This module is also the one place that touches private parts of jsonargparse and
Lightning.
"""

import atexit
import contextlib
import difflib
import logging
import os
import re
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
import yaml
from jsonargparse import ArgumentError, set_parsing_settings
from lightning.pytorch.cli import LightningCLI, LRSchedulerTypeTuple
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only, rank_zero_warn
from torch.optim import Optimizer

from cnnlab import recipes
from cnnlab.callbacks import PredictionWriter
from cnnlab.datamodules import (  # noqa: F401
    CIFAR10DataModule,
    CIFAR100DataModule,
    ClassificationDataModule,
    FashionMNISTDataModule,
    ImageFilesDataModule,
    ImageFolderDataModule,
    KMNISTDataModule,
    MNISTDataModule,
    STL10DataModule,
    SVHNDataModule,
)
from cnnlab.errors import UserError, writable_folder
from cnnlab.models import DistillationClassifier, ImageClassifier, read_checkpoint  # noqa: F401
from cnnlab.models.checkpoint import TRUSTED_IMPORTS
from cnnlab.schedulers import TriangularLR, WarmupCosineLR  # noqa: F401  (makes --lr_scheduler NAME known)

# Packages of the user's own whose classes recipes may name too (callbacks, data modules), comma-separated.
TRUST_VARIABLE = "CNNLAB_TRUST"
# ImageClassifier lowers log_every_n_steps itself when an epoch has few batches.
warnings.filterwarnings("ignore", message=r"The number of training batches .* is smaller than the logging")
# Raised inside Lightning on every run with recent torch; nothing a cnnlab user can act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
# Lightning advertises its cloud logger at the start of every run; cnnlab logs to TensorBoard.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
    lambda record: not record.getMessage().startswith("💡 Tip")
)

SUBCOMMANDS = ("fit", "validate", "test", "predict")
DATA_LINKS = ("num_classes", "in_channels", "image_size", "class_names", "mean", "std")
# Hyperparameters that the CLI sets from elsewhere; a checkpoint's copies of them are not parsed back.
LINKED_HPARAMS = (*DATA_LINKS, "optimizer", "lr_scheduler")
# How a model runs, not what its weights are: given on the command line, these win over a checkpoint's.
RUNTIME_HPARAMS = ("tta", "tta_shift", "channels_last", "compile")
# Keys whose string values name classes (``--data MNISTDataModule``, ``plugins: [cnnlab....]``).
CLASS_KEYS = ("data", "model", "optimizer", "lr_scheduler", "logger", "callbacks", "plugins", "strategy")
MODEL = f"{ImageClassifier.__module__.rpartition('.')[0]}.{ImageClassifier.__name__}"
FILES = f"{ImageFilesDataModule.__module__.rpartition('.')[0]}.{ImageFilesDataModule.__name__}"
SUBCOMMAND_HELP = {
    name: f"cnnlab {name}: {text} Recipes: --config NAME (cnnlab --help lists them) or a YAML file, read "
    "after defaults.yaml. Below: the trainer's options. A recipe's model and data options depend on its "
    "classes: see them with --model.help ImageClassifier (or DistillationClassifier) and --data.help "
    "MNISTDataModule (or FashionMNISTDataModule, KMNISTDataModule, CIFAR10DataModule, CIFAR100DataModule, "
    "SVHNDataModule, STL10DataModule, ImageFolderDataModule, ImageFilesDataModule); every value a "
    "command would use: --print_config."
    for name, text in {
        "fit": "train a model from a recipe, then test its best checkpoint.",
        "validate": "measure a model on the validation split.",
        "test": "measure a model on the test split, with a per-class report.",
        "predict": "classify image files (--data.predict_dir) with a checkpoint (--ckpt_path).",
    }.items()
}
OPTION_HELP = {
    "ckpt_path": "A checkpoint written by cnnlab fit, or 'last': the newest last.ckpt of this recipe's runs. "
    "The model (architecture and its options) comes from it; fit resumes it in its own run folder; "
    "test, validate and predict measure it (predict needs nothing else: no recipe, no data set).",
    "weights_only": "Load checkpoints with torch.load(weights_only=True): tensors and plain values only. "
    "cnnlab always does; a checkpoint carrying pickled code is refused.",
}
DESCRIPTION = (
    "cnnlab: train, test and compare classic image-classification CNNs from recipes "
    "(LightningCLI with cnnlab's defaults)."
)


class CNNLabCLI(LightningCLI):
    """LightningCLI with cnnlab's defaults, run naming, checkpoint handling and trusted classes only.

    Args:
        args: the command line (``["fit", "--config", "mnist_lenet5", ...]``); ``sys.argv`` when None.
        run: as LightningCLI's: with ``False``, no subcommand; the classes are built, nothing runs.
        execute: with ``False``, a subcommand's classes are built but it does not run (``build``).
        with_trainer: with ``False``, the model and data module are built, not the trainer (the tools:
            a run's trainer settings, say a GPU, need not fit the machine that exports its checkpoint).
        tool: parse for a tool reading a checkpoint: the data module stays the configured one.
        instantiate: with ``False``, only parse (and check) the options: no file is read, nothing built.
    """

    def __init__(
        self, args=None, run: bool = True, *, execute=True, with_trainer=True, tool=False, instantiate=True
    ):
        self._execute, self._with_trainer, self._tool = execute, with_trainer, tool
        self._instantiate = instantiate
        self._claimed: Path | None = None
        # A value in a recipe, a run's config.yaml or on the command line may name only trusted import
        # paths; the check runs before anything is imported (jsonargparse's import-path allowlist).
        set_parsing_settings(import_path_denylist=["*"], import_path_allowlist=list(trusted_imports()))
        argv = sys.argv[1:] if args is None else args
        if not isinstance(argv, dict):
            argv = _prepare_configs(list(argv))
        defaults = recipes.defaults_file()
        parser_kwargs = {
            "exit_on_error": False,  # parse errors raise, and become one clear line (parse_arguments)
            "description": DESCRIPTION,
            "dump_header": [f"lightning.pytorch=={L.__version__}", f"cnnlab defaults: {defaults}"],
            "default_config_files": [str(defaults)],
        }
        try:
            self._run(argv, run, parser_kwargs)
        except BaseException:
            if self._claimed is not None:  # a run that failed before writing leaves no folder behind
                _remove_if_empty(self._claimed)
            raise

    def _run(self, argv, run: bool, parser_kwargs: dict) -> None:
        super().__init__(
            ImageClassifier,
            ClassificationDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            seed_everything_default=42,
            save_config_kwargs={"overwrite": True},  # a resumed run rewrites its config.yaml
            parser_kwargs={
                # the main parser holds the options itself only without subcommands (run=False)
                **(
                    parser_kwargs
                    if not run
                    else {k: parser_kwargs[k] for k in ("exit_on_error", "description")}
                ),
                **{name: dict(parser_kwargs) for name in SUBCOMMANDS},
            },
            args=argv,
            run=run,
        )

    def _prepare_subcommand_parser(self, klass, subcommand: str, **kwargs):
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand == "predict":  # no data set needed: the files to classify, shaped by the checkpoint
            parser.set_defaults({"data": {"class_path": FILES}})
        return parser

    def _add_subcommands(self, parser, **kwargs) -> None:
        super()._add_subcommands(parser, **kwargs)  # then cnnlab's words for what the commands do
        for subcommand, sub in parser._subcommands_action._name_parser_map.items():
            sub.description = SUBCOMMAND_HELP[subcommand]
            for action in sub._actions:
                if action.dest in OPTION_HELP:
                    action.help = OPTION_HELP[action.dest]
            sub.set_defaults(weights_only=True)

    def add_core_arguments_to_parser(self, parser) -> None:
        super().add_core_arguments_to_parser(parser)
        parser.set_defaults({"model": {"class_path": MODEL}})  # --model.arch X needs no --model CLASS

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_optimizer_args((Optimizer,), link_to="model.init_args.optimizer")
        parser.add_lr_scheduler_args(LRSchedulerTypeTuple, link_to="model.init_args.lr_scheduler")
        for key in DATA_LINKS:  # as plain lists: a tuple would be !!python/tuple in hparams.yaml
            parser.link_arguments(
                f"data.{key}", f"model.init_args.{key}", compute_fn=_as_dict, apply_on="instantiate"
            )
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=True,
            help="After fit, test the best checkpoint (fit only).",
        )
        parser.add_argument(
            "--relabel_classes",
            type=bool,
            default=False,
            help="With --ckpt_path: accept data whose class names differ from the checkpoint's (the same "
            "classes in the same order under other names); refused otherwise.",
        )
        # predict: where the CSV goes and how many rows are printed (--prediction.output, .show)
        parser.add_lightning_class_args(PredictionWriter, "prediction")

    @staticmethod
    def link_optimizers_and_lr_schedulers(parser) -> None:
        # As Lightning's, but the model receives plain dicts, so its hyperparameters stay plain values.
        for key, (_, link_to) in {**parser._optimizers, **parser._lr_schedulers}.items():
            if link_to != "AUTOMATIC":
                parser.link_arguments(key, link_to, compute_fn=_as_dict)

    def parse_arguments(self, parser, args) -> None:
        argv = sys.argv[1:] if args is None else args
        linked = sorted(_options_given(argv, "model") & set(DATA_LINKS))
        if linked:
            raise UserError(linked_option_message(linked[0]))
        self._runtime_options = _runtime_options_given(argv)
        self._trainer_options = _options_given(argv, "trainer")
        try:  # as Lightning's, without its warning when both args and sys.argv are set: main() sets both
            self.config = parser.parse_object(args) if isinstance(args, dict) else parser.parse_args(args)
        except ArgumentError as err:
            raise UserError(_one_line_parse_error(str(err), parser)) from err

    # -- run naming, resume and the checkpoint's model ---------------------------------------------------
    def _parse_ckpt_path(self) -> None:
        """Name the run, resolve ``--ckpt_path last``, and take the model's options from the checkpoint
        (run-time options given on the command line excepted)."""
        if not self._instantiate:
            return
        subcommand = self.config.get("subcommand")
        cfg = self.config[subcommand] if subcommand else self.config
        logger = _tensorboard_init_args(cfg)
        if logger is not None and logger.get("name") in (None, "lightning_logs"):
            logger["name"] = self._experiment_name(cfg)
        if subcommand == "fit" and logger is not None and self._execute:
            writable_folder(logger["save_dir"], "--trainer.logger.init_args.save_dir")
        if not subcommand:
            return  # run=False: no checkpoint options
        claim = logger is not None and self._execute and not cfg.trainer.get("fast_dev_run")
        if cfg.get("ckpt_path") == "last" and logger is not None:
            cfg["ckpt_path"] = _newest_last_checkpoint(Path(logger["save_dir"]) / logger["name"])
        if cfg.get("weights_only") is None:
            cfg["weights_only"] = True  # Lightning's own loading, too, takes tensors and plain values only
        ckpt_path = cfg.get("ckpt_path")
        if not ckpt_path or ckpt_path in ("best", "last", "hpc"):
            if claim:
                self._claimed = _claim_version(logger)
            return
        ckpt = read_checkpoint(ckpt_path, keep=True)  # one line for broken files; Lightning reuses it
        self._checkpoint = ckpt
        if logger is not None and not [c for c in (cfg.get("config") or []) if c is not None]:
            logger["name"] = _checkpoint_run_name(Path(ckpt_path), ckpt)  # no recipe: the checkpoint's run
        if subcommand == "fit" and logger is not None and self._execute:
            _continue_run(logger, Path(ckpt_path), ckpt.data.get("global_step", 0))
        updates, runtime = {}, {}
        model_cfg = {k: v for k, v in ckpt.hparams.items() if k not in LINKED_HPARAMS}
        if model_cfg:
            runtime = {k: cfg.model.init_args[k] for k in getattr(self, "_runtime_options", ())}
            updates["model"] = {"class_path": ckpt.class_path, "init_args": model_cfg}
        data = cfg.get("data")
        if (subcommand == "predict" and not self._tool) or (data and data.class_path == FILES):
            updates["data"] = _files_from_checkpoint(ckpt, cfg)
        if claim:
            self._claimed = _claim_version(logger)
        if updates:
            self.config = self.parser.parse_object({subcommand: updates}, self.config)
            cfg = self.config[subcommand]
            for key, value in runtime.items():
                cfg.model.init_args[key] = value

    def _experiment_name(self, cfg) -> str:
        configs = [c for c in (cfg.get("config") or []) if c is not None]
        if configs:
            return Path(str(configs[-1])).stem
        data = str(cfg.data.class_path).rsplit(".", 1)[-1].removesuffix("DataModule").lower()
        return f"{data}_{cfg.model.init_args.arch}"

    def before_instantiate_classes(self) -> None:
        # `--trainer.enable_checkpointing false`, `--trainer.logger false` and
        # `--trainer.enable_progress_bar false` switch off the default callbacks that need them, instead
        # of failing on them.
        trainer = self.config[self.subcommand].trainer if self.subcommand else self.config.trainer
        drop = {
            "ModelCheckpoint": trainer.get("enable_checkpointing") is False,
            "LearningRateMonitor": not trainer.logger,
            "TQDMProgressBar": trainer.get("enable_progress_bar") is False,
        }
        if trainer.get("callbacks"):
            trainer.callbacks = [
                c for c in trainer.callbacks if not drop.get(str(c.class_path).rsplit(".", 1)[-1])
            ]
        self._check_cpu_bf16(trainer)
        model = self.config[self.subcommand].model if self.subcommand else self.config.model
        arch_kwargs = model.init_args.get("arch_kwargs") if model and model.get("init_args") else None
        if self._tool and arch_kwargs and arch_kwargs.get("pretrained"):
            arch_kwargs["pretrained"] = False  # a tool reads structure or a checkpoint's weights: no download

    def _check_cpu_bf16(self, trainer) -> None:
        """bf16 on a CPU without native support (AVX-512 or AMX) is emulated: simplecnn trained 15x and
        mnist_speedrun 7x slower than in fp32 on a 2-core AVX2 CPU. A recipe's ``bf16-mixed`` runs as
        ``32-true`` there; one given on the command line is kept, with a warning."""
        precision = str(trainer.get("precision"))
        if not precision.startswith("bf16") or not bf16_is_emulated(trainer.get("accelerator")):
            return
        if precision in ("bf16-mixed", "bf16") and "precision" not in self._trainer_options:
            trainer.precision = "32-true"
            rank_zero_info(
                f"cnnlab: this CPU has no native bf16 (AVX-512 or AMX), so the recipe's {precision} runs "
                "as 32-true, several times faster here; --trainer.precision bf16-mixed insists"
            )
        else:
            rank_zero_warn(
                f"precision {precision} on this CPU (no AVX-512 or AMX) is emulated and trains several "
                "times slower than --trainer.precision 32-true"
            )

    def instantiate_classes(self) -> None:
        if not self._instantiate:
            self.trainer = self.model = self.datamodule = None
            return
        if self._with_trainer:
            return super().instantiate_classes()
        self.config_init = self.parser.instantiate_classes(self.config)
        self.datamodule = self._get(self.config_init, "data")
        self.model = self._get(self.config_init, "model")
        self.trainer = None

    def _run_subcommand(self, subcommand: str) -> None:
        if self._execute and self._instantiate:
            super()._run_subcommand(subcommand)

    def run_subcommand(self) -> None:
        """Run the subcommand of a CLI built with ``execute=False`` as the command runs it: its checks
        first and, after fit, the test of the best checkpoint (``Built.run``)."""
        self._execute = True
        self._run_subcommand(self.subcommand)

    # -- a checkpoint must fit the data ------------------------------------------------------------
    def _check_checkpoint_fits_data(self) -> None:
        ckpt = getattr(self, "_checkpoint", None)
        hparams = ckpt.hparams if ckpt is not None else {}
        for key in ("in_channels", "num_classes"):
            theirs, ours = hparams.get(key), getattr(self.datamodule, key, None)
            if theirs is not None and ours is not None and theirs != ours:
                raise UserError(
                    f"checkpoint {ckpt.path} has {key}={theirs} but the data has {key}={ours}; pass data "
                    "of the same kind as the checkpoint was trained on"
                )
        theirs, ours = hparams.get("class_names"), getattr(self.datamodule, "class_names", None)
        subcommand_cfg = self.config[self.subcommand]
        if theirs and ours and list(theirs) != list(ours) and not subcommand_cfg.get("relabel_classes"):
            raise UserError(
                f"checkpoint {ckpt.path} was trained on the classes {list(theirs)} but the data has "
                f"{list(ours)}; its outputs would be read as the wrong classes. Pass the data it was trained "
                "on, or --relabel_classes true if the data's classes are the same ones under other names"
            )

    def before_fit(self) -> None:
        self._check_checkpoint_fits_data()
        if getattr(self.datamodule, "val_fraction", None) == 0:
            # No validation split, as asked: Lightning would say so twice, as if it were a mistake (an empty
            # validation loader, and val/acc missing for the best checkpoint). The run tests its last weights.
            warnings.filterwarnings("ignore", message=r"Total length of `list` across ranks is zero")
            warnings.filterwarnings("ignore", message=r"`ModelCheckpoint\(monitor='val/")

    def before_validate(self) -> None:
        self._check_checkpoint_fits_data()
        if not self.config[self.subcommand].get("ckpt_path") and not self.model.hparams.get("init_from"):
            _untrained(self.subcommand, "pass the checkpoint to measure with --ckpt_path CKPT")

    before_test = before_predict = before_validate

    # -- after fit: test the best checkpoint ---------------------------------------------------------
    def after_fit(self) -> None:
        if not self.config.fit.get("test_after_fit", True) or self.trainer.interrupted:
            return
        if self.trainer.global_step == 0 and not self.model.hparams.get("init_from"):
            _untrained("the post-fit test", "no training step ran (--trainer.max_epochs 0?)")
        best = getattr(self.trainer.checkpoint_callback, "best_model_path", "")
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None, weights_only=True)


@dataclass
class Built:
    """What ``cnnlab.cli.build`` and ``read_recipe`` return: the objects a command would run, and the CLI
    that parsed them (its ``config``)."""

    trainer: L.Trainer | None
    model: L.LightningModule
    datamodule: L.LightningDataModule
    cli: CNNLabCLI

    def run(self) -> None:
        """Run what was built as the command would (``fit`` also tests its best checkpoint afterwards);
        callbacks added to ``trainer.callbacks`` meanwhile take part."""
        self.cli.run_subcommand()


def read_recipe(args: list[str], ckpt_path: str | None = None) -> Built:
    """The model and data module of recipe options (``--config``, ``--data.*``, ``--model.*``), for a
    tool: no trainer. With ``ckpt_path``, the run's ``config.yaml`` beside it is read first and the
    model comes from the checkpoint. With no data module given, ``ImageFilesDataModule`` gives the input
    shape (the checkpoint's, with one)."""
    args = list(args)
    if ckpt_path is not None:
        run_config = Path(ckpt_path).resolve().parent.parent / "config.yaml"
        if run_config.is_file():
            args = ["--config", str(run_config), *args]
        args += ["--ckpt_path", str(ckpt_path)]
    cli = CNNLabCLI(args=["predict", *args], execute=False, with_trainer=False, tool=True)
    return Built(None, cli.model, cli.datamodule, cli)


# -- recipes and config files --------------------------------------------------------------------------
_RENAMED_DIR: str | None = None


def _prepare_configs(argv: list[str]) -> list[str]:
    """The command line with each ``--config`` value resolved (a path, or a packaged recipe's name),
    checked for untrusted classes before anything is parsed, and old class names renamed."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config" and i + 1 < len(argv):
            out += ["--config", _prepare_config(argv[i + 1])]
            i += 2
            continue
        if arg.startswith("--config="):
            out.append("--config=" + _prepare_config(arg.partition("=")[2]))
        elif arg.startswith("--") and "=" in arg:
            key, _, value = arg.partition("=")
            out.append(f"{key}={recipes.current_name(value)}")
        else:
            out.append(recipes.current_name(arg))
        i += 1
    return out


def _prepare_config(value: str) -> str:
    path = recipes.resolve(value)
    if not Path(path).is_file():
        return path  # YAML given inline: jsonargparse reads it, with its import-path allowlist
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        reason = str(err).strip().splitlines()[0]
        raise UserError(f"config {value} is not a readable YAML file ({reason}); fix or replace it") from err
    _refuse_untrusted(loaded, Path(path))
    model_args = (loaded.get("model") or {}).get("init_args") if isinstance(loaded, dict) else None
    linked = sorted(set(model_args or {}) & set(DATA_LINKS)) if isinstance(model_args, dict) else []
    if linked:
        raise UserError(linked_option_message(linked[0], path))
    renamed = recipes.current_names(loaded)
    if renamed == loaded:
        return path
    # A run folder or recipe of an earlier cnnlab version: read a copy under the present class names, with
    # the same file name (it names the run).
    global _RENAMED_DIR
    if _RENAMED_DIR is None:
        _RENAMED_DIR = tempfile.mkdtemp(prefix="cnnlab-config-")
        atexit.register(shutil.rmtree, _RENAMED_DIR, True)
    copy = Path(_RENAMED_DIR) / str(len(os.listdir(_RENAMED_DIR))) / Path(path).name
    copy.parent.mkdir()
    copy.write_text(yaml.safe_dump(renamed, sort_keys=False))
    return str(copy)


def _refuse_untrusted(config, path: Path, key: str = "") -> None:
    """One line for the first class path in ``config`` outside ``TRUSTED_IMPORTS``, naming its key."""
    if isinstance(config, dict):
        for name, value in config.items():
            inner = f"{key}.{name}" if key else str(name)
            if name == "class_path" or (name in CLASS_KEYS and isinstance(value, str)):
                _check_trusted(value, inner, path)
            _refuse_untrusted(value, path, inner)
    elif isinstance(config, list):
        for i, value in enumerate(config):
            if isinstance(value, str) and key.rsplit(".", 1)[-1] in CLASS_KEYS:
                _check_trusted(value, f"{key}[{i}]", path)
            _refuse_untrusted(value, path, f"{key}[{i}]")


def trusted_imports() -> tuple[str, ...]:
    """``TRUSTED_IMPORTS`` and the packages named in ``$CNNLAB_TRUST``."""
    extra = [p.strip() for p in os.environ.get(TRUST_VARIABLE, "").split(",") if p.strip()]
    for entry in extra:
        if not all(part.isidentifier() for part in entry.split(".")) or entry.startswith("jsonargparse"):
            raise UserError(
                f"{TRUST_VARIABLE} holds {entry!r}; it takes import paths such as mypackage.callbacks"
            )
    return (*TRUSTED_IMPORTS, *extra)


def linked_option_message(key: str, where: str = "") -> str:
    source = f" in {where}" if where else ""
    return (
        f"model option {key}{source} comes from the data module, which would replace it; set it on the data "
        f"(--data.{'channels' if key == 'in_channels' else key} for an image folder, --data.{key} for "
        "ImageFilesDataModule) or choose the data set with --config or --data"
    )


def _check_trusted(value, key: str, path: Path) -> None:
    name = recipes.current_name(str(value))
    trusted = trusted_imports()
    if "." in name and not any(name == p or name.startswith(p + ".") for p in trusted):
        raise UserError(untrusted_message(key, name, str(path)))


def untrusted_message(key: str, class_path: str, where: str = "") -> str:
    source = f" in {where}" if where else ""
    return (
        f"{key}{source} names {class_path}, which cnnlab does not import: recipes may name only classes "
        f"under {', '.join(trusted_imports())}; nothing was imported; remove it, or if it is your own code, "
        f"add its package to {TRUST_VARIABLE} (e.g. {TRUST_VARIABLE}={class_path.rpartition('.')[0]})"
    )


def _checkpoint_run_name(path: Path, ckpt) -> str:
    """The experiment a checkpoint belongs to: the ``<name>`` of ``<name>/version_N/checkpoints/``, else
    ``<arch>`` from its hyperparameters."""
    parts = path.resolve().parts
    if len(parts) >= 4 and parts[-2] == "checkpoints" and re.fullmatch(r"version_\d+", parts[-3]):
        return parts[-4]
    return str(ckpt.hparams.get("arch", "model")).replace(":", "_")


def _files_from_checkpoint(ckpt, cfg) -> dict:
    """``predict``'s data module: the user's files, shaped and normalised as the checkpoint says."""
    hp = ckpt.require_model()
    data_args = dict(cfg.data.init_args) if cfg.get("data") and cfg.data.get("init_args") else {}
    normalisation = ckpt.normalisation()
    mean, std = normalisation if normalisation else (data_args.get("mean"), data_args.get("std"))
    if mean is None:
        raise UserError(
            f"{ckpt.path} records no normalisation (it predates cnnlab's mean/std hyperparameters); pass the "
            "training data's --data.mean and --data.std, e.g. --data.mean [0.1307] --data.std [0.3081]"
        )
    files = {
        "num_classes": hp.get("num_classes", 10),
        "in_channels": hp.get("in_channels", 3),
        "image_size": hp.get("image_size", 32),
        "class_names": list(hp["class_names"]) if hp.get("class_names") else None,
        "mean": list(mean),
        "std": list(std),
    }
    for key in ("predict_dir", "batch_size", "num_workers"):
        if data_args.get(key) is not None:
            files[key] = data_args[key]
    return {"class_path": FILES, "init_args": files}


# -- helpers --------------------------------------------------------------------------------------------
def _as_dict(value):
    """A linked optimizer or scheduler config as plain YAML values (dicts, lists, scalars)."""
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    if isinstance(value, dict):
        return {k: _as_dict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_dict(v) for v in value]
    return value


def _tensorboard_init_args(cfg):
    logger = cfg.trainer.get("logger")
    if hasattr(logger, "class_path") and str(logger.class_path).endswith("TensorBoardLogger"):
        return logger.init_args
    return None


def _newest_last_checkpoint(run_dir: Path) -> str | None:
    candidates = sorted(run_dir.glob("version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        print(
            f"cnnlab: no last.ckpt under {run_dir}/version_*/checkpoints; starting a new run", file=sys.stderr
        )
        return None
    return str(candidates[-1])


def _continue_run(logger, ckpt_path: Path, global_step: int) -> None:
    """Log a resumed fit into the checkpoint's own ``version_N`` folder, as one unbroken curve."""
    run_dir = ckpt_path.resolve().parent.parent
    expected = (Path(logger["save_dir"]) / logger["name"]).resolve()
    match = re.fullmatch(r"version_(\d+)", run_dir.name)
    if ckpt_path.resolve().parent.name == "checkpoints" and match and run_dir.parent == expected:
        logger["version"] = int(match.group(1))
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
        # TensorBoard drops events the interrupted run wrote past the checkpoint, so no step appears twice.
        logger["purge_step"] = global_step


def _untrained(what: str, hint: str) -> None:
    if rank_zero_only.rank == 0:
        print(
            f"cnnlab: warning: {what} a model that was never trained (random weights); {hint}",
            file=sys.stderr,
        )


def _claim_version(logger) -> Path | None:
    """Give the run its own ``version_N`` folder, made with ``mkdir`` (atomic), so that runs of one recipe
    started together never share a folder (TensorBoardLogger only counts the existing ones). On global
    rank zero only: the other processes of a DDP run log into rank zero's folder."""
    if logger.get("version") is not None or rank_zero_only.rank != 0:
        return None
    root = Path(logger["save_dir"]) / str(logger["name"])
    root.mkdir(parents=True, exist_ok=True)
    found = (re.fullmatch(r"version_(\d+)", p.name) for p in root.iterdir())
    version = max((int(m.group(1)) for m in found if m), default=-1) + 1
    while True:
        folder = root / f"version_{version}"
        try:
            folder.mkdir()
        except FileExistsError:  # another run took it first
            version += 1
            continue
        logger["version"] = version
        return folder


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


def _runtime_options_given(args) -> set[str]:
    """The RUNTIME_HPARAMS set on the command line (``--model.tta true``, ``--model.init_args.tta=true``)."""
    return _options_given(args, "model") & set(RUNTIME_HPARAMS)


def _options_given(args, group: str) -> set[str]:
    """The options of ``group`` set on the command line (``--trainer.precision 32-true``)."""
    if isinstance(args, dict):  # LightningCLI also accepts a config dict
        return set()
    found = (re.match(rf"--{group}\.(?:init_args\.)?(\w+)(?:=|$)", str(a)) for a in args)
    return {m.group(1) for m in found if m}


def bf16_is_emulated(accelerator) -> bool:
    """Whether bf16 would run on a CPU that has no native bf16 support (PyTorch's own oneDNN check)."""
    accelerator = str(accelerator or "auto")
    gpu = torch.cuda.is_available() or torch.backends.mps.is_available()
    if accelerator != "cpu" and (accelerator != "auto" or gpu):
        return False
    try:
        return not torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):  # a PyTorch build without the check: assume native
        return False


# -- one-line parse errors ------------------------------------------------------------------------------
def _one_line_parse_error(message: str, parser) -> str:
    """jsonargparse's multi-line parse error as one line, with close matches for unknown names."""
    denied = re.search(r"Importing '([\w.]+)' is not allowed", message)
    if denied:
        key = re.search(r'Parser key "([\w.]+)"', message)
        return untrusted_message(key.group(1) if key else "a value", denied.group(1))
    subcommand = re.search(r"Subcommand '(\w+)'", message)
    unknown = re.findall(r"unrecognized arguments: (.*)", message)
    options = _known_options(parser, subcommand.group(1) if subcommand else None)
    if unknown:
        keys = [a.split("=")[0] for a in unknown[0].split() if a.startswith("--")]
        return _unknown_keys_message([k.removeprefix("--") for k in keys], options) if keys else message
    bad_key = re.search(r"does not accept (?:nested )?(?:option|key) '([^']+)'", message)
    if bad_key:
        return _unknown_keys_message([bad_key.group(1)], options)
    inside = r'Parser key "(\w+)".*?Problem with given class_path \'([\w.]+)\':\s*'
    not_accepted = re.search(inside + r"Option '(\w+)' is not accepted", message, re.S)
    if not_accepted:
        group, class_path, key = not_accepted.groups()
        return _unknown_keys_message([f"{group}.{key}"], [f"{group}.{k}" for k in _class_options(class_path)])
    pattern = r'Parser key "(\w+)".*Given value: NestedArg\(key=.([^\']+)., val=(.*)\)'
    nested = re.search(pattern, message, re.S)
    if nested:
        return _bad_value_message(nested.group(1), nested.group(2), nested.group(3), message)
    expected_type = r'Parser key "(\w+)":\s*Expected a <class \'(\w+)\'>\. Got value: (.*)'
    wrong_type = re.search(inside + expected_type, message, re.S)
    if wrong_type:
        group, _, key, expected, value = wrong_type.groups()
        return f"bad value {value.splitlines()[0].strip()} for --{group}.{key} (expected {expected})"
    given = re.search(r'Parser key "(data|model)".*Given value: (\S+)', message, re.S)
    if given:
        return _unknown_class_message(given.group(1), given.group(2))
    lines = [line.strip(" -") for line in message.splitlines() if line.strip(" -")]
    return "; ".join(lines[:3])


def _bad_value_message(group: str, key: str, value: str, message: str) -> str:
    """A value of the wrong type for one option of a class (``--model.label_smoothing abc``)."""
    expected = sorted({t for t in re.findall(r"Expected a <class '(\w+)'>", message) if t != "NoneType"})
    wanted = f" (expected {' or '.join(expected)})" if expected else ""
    hint = ""
    if "dict" in expected:
        hint = (
            f"; write a mapping as YAML with a space after each colon, e.g. '{{name: 1}}', "
            f"or set one entry with --{group}.{key}.NAME VALUE"
        )
    return f"bad value {value} for --{group}.{key}{wanted}{hint}"


def _known_options(parser, subcommand: str | None) -> list[str]:
    action = getattr(parser, "_subcommands_action", None)
    if action is not None:
        name = subcommand or next(iter(action._name_parser_map), None)
        parser = action._name_parser_map.get(name, parser)
    return [o.removeprefix("--") for a in parser._actions for o in a.option_strings if o.startswith("--")]


def _class_options(class_path: str) -> list[str]:
    """The constructor arguments of a (trusted, already named) class, for close matches."""
    import importlib
    import inspect

    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return []
    names = []
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names += [
                p for p in inspect.signature(klass.__init__).parameters if p not in ("self", "args", "kwargs")
            ]
    return list(dict.fromkeys(names))


def _unknown_keys_message(keys: list[str], options: list[str]) -> str:
    parts = []
    for key in keys:
        close = difflib.get_close_matches(key, options, n=3, cutoff=0.7)
        parts.append(f"'{key}'" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    return f"unknown config key {', '.join(parts)}; see cnnlab fit --help for the accepted keys"


def _unknown_class_message(group: str, value: str) -> str:
    base = ClassificationDataModule if group == "data" else ImageClassifier
    known = sorted({c.__name__ for c in _subclasses(base)})
    close = difflib.get_close_matches(value.rsplit(".", 1)[-1], known, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    kind = "data module" if group == "data" else "model class"
    return f"unknown {kind} '{value}'.{hint} Known: {', '.join(known)}"


def _subclasses(cls) -> list[type]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _subclasses(sub)
    return found
