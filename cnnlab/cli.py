"""The ``cnnlab`` command: LightningCLI with cnnlab's defaults, resume and post-fit test.

``cnnlab fit|validate|test|predict --config experiments/<recipe>.yaml`` as with any LightningCLI, plus:

* ``experiments/defaults.yaml`` is read first, so recipes hold only what differs;
* runs log to ``lightning_logs/<recipe name>/version_N`` (the name is the last ``--config`` file's);
* ``--ckpt_path last`` resumes the newest run of that recipe in its own ``version_N`` folder;
* after ``fit``, the best checkpoint (by ``val/acc``) is tested and the metrics printed;
* ``predict --data.predict_dir FILES_OR_FOLDER`` writes the predictions to a CSV (``--prediction.*``);
* ``num_classes``, ``in_channels``, ``image_size``, ``class_names``, ``mean`` and ``std`` go from the
  data module to the model; ``--optimizer`` and ``--lr_scheduler`` go into the model's hyperparameters.
"""

import difflib
import importlib
import logging
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from jsonargparse import ArgumentError
from lightning.pytorch.cli import LightningCLI, LRSchedulerTypeTuple
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.optim import Optimizer

import datamodules  # noqa: F401  (makes the data modules' short names known to --data)
from cnnlab.checkpoints import load_checkpoint
from cnnlab.errors import UserError
from cnnlab.predict import PredictionWriter
from datamodules import ClassificationDataModule
from models import ImageClassifier

# Raised inside Lightning on every run with recent torch; nothing a cnnlab user can act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
# Lightning advertises its cloud logger at the start of every run; cnnlab logs to TensorBoard.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
    lambda record: not record.getMessage().startswith("💡 Tip")
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = ROOT / "experiments" / "defaults.yaml"
SUBCOMMANDS = ("fit", "validate", "test", "predict")
# cnnlab's own subcommands beside LightningCLI's: each module has ``main(argv)`` with its own --help.
TOOLS = {
    "summary": "cnnlab.summary",
    "report": "cnnlab.report",
    "export": "cnnlab.export",
    "compress": "cnnlab.compress",
}
DATA_LINKS = ("num_classes", "in_channels", "image_size", "class_names", "mean", "std")
# Hyperparameters that the CLI sets from elsewhere; a checkpoint's copies of them are not parsed back.
LINKED_HPARAMS = (*DATA_LINKS, "optimizer", "lr_scheduler")
# How a model runs, not what its weights are: given on the command line, these win over a checkpoint's.
RUNTIME_HPARAMS = ("tta", "channels_last", "compile")


class CNNLabCLI(LightningCLI):
    def __init__(self, args=None, run: bool = True):
        defaults = [str(DEFAULTS)] if DEFAULTS.is_file() else []
        super().__init__(
            ImageClassifier,
            ClassificationDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            seed_everything_default=42,
            save_config_kwargs={"overwrite": True},  # a resumed run rewrites its config.yaml
            parser_kwargs={
                "exit_on_error": False,  # parse errors raise, and become one clear line (parse_arguments)
                "epilog": f"cnnlab's own subcommands: {', '.join(TOOLS)} (each with --help).",
                **{name: {"default_config_files": defaults} for name in SUBCOMMANDS},
            },
            args=args,
            run=run,
        )

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
        self._runtime_options = _runtime_options_given(argv)
        self._trainer_options = _options_given(argv, "trainer")
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as err:
            raise UserError(_one_line_parse_error(str(err), parser)) from err

    # -- run naming and resume ----------------------------------------------------------------------
    def _parse_ckpt_path(self) -> None:
        """Name the run, resolve ``--ckpt_path last``, and take the model's options from the checkpoint
        (run-time options given on the command line excepted)."""
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        cfg = self.config[subcommand]
        logger = _tensorboard_init_args(cfg)
        if logger is not None and logger.get("name") in (None, "lightning_logs"):
            logger["name"] = self._experiment_name(cfg)
        if subcommand == "fit" and logger is not None:
            _check_writable(Path(logger["save_dir"]))
        if cfg.get("ckpt_path") == "last" and logger is not None:
            cfg["ckpt_path"] = _newest_last_checkpoint(Path(logger["save_dir"]) / logger["name"])
        if cfg.get("weights_only") is None:
            cfg["weights_only"] = True  # Lightning's own loading, too, takes tensors and plain values only
        ckpt_path = cfg.get("ckpt_path")
        if not ckpt_path or ckpt_path in ("best", "last", "hpc"):
            return
        ckpt = load_checkpoint(ckpt_path)  # refuses pickled code and broken files with one line
        self._checkpoint = (ckpt_path, ckpt.get("hyper_parameters", {}))
        if subcommand == "fit" and logger is not None:
            _continue_run(logger, Path(ckpt_path), ckpt.get("global_step", 0))
        hparams = {k: v for k, v in ckpt.get("hyper_parameters", {}).items() if not k.startswith("_")}
        model_cfg = {k: v for k, v in hparams.items() if k not in LINKED_HPARAMS}
        if model_cfg:
            class_path = ckpt.get("hyper_parameters", {}).get("_class_path")
            model = (
                {"class_path": class_path, "init_args": model_cfg} if class_path else {"init_args": model_cfg}
            )
            given = {k: cfg.model.init_args[k] for k in getattr(self, "_runtime_options", ())}
            self.config = self.parser.parse_object({subcommand: {"model": model}}, self.config)
            for key, value in given.items():
                self.config[subcommand].model.init_args[key] = value

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

    # -- a checkpoint must fit the data ------------------------------------------------------------
    def _check_checkpoint_fits_data(self) -> None:
        ckpt_path, hparams = getattr(self, "_checkpoint", (None, {}))
        for key in ("in_channels", "num_classes"):
            theirs, ours = hparams.get(key), getattr(self.datamodule, key, None)
            if theirs is not None and ours is not None and theirs != ours:
                raise UserError(
                    f"checkpoint {ckpt_path} has {key}={theirs} but the data has {key}={ours}; pass data "
                    "of the same kind as the checkpoint was trained on"
                )

    def before_fit(self) -> None:
        self._check_checkpoint_fits_data()

    before_validate = before_test = before_predict = before_fit

    # -- after fit: test the best checkpoint ---------------------------------------------------------
    def after_fit(self) -> None:
        if not self.config.fit.get("test_after_fit", True) or self.trainer.interrupted:
            return
        best = getattr(self.trainer.checkpoint_callback, "best_model_path", "")
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None, weights_only=True)


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


def _check_writable(folder: Path) -> None:
    """Fail before training, not at the first checkpoint, when the run folder cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise UserError(
            f"output folder {folder} is not writable ({err.strerror or err}); pass a writable "
            "--trainer.logger.init_args.save_dir"
        ) from err


def _one_line_parse_error(message: str, parser) -> str:
    """jsonargparse's multi-line parse error as one line, with close matches for unknown names."""
    subcommand = re.search(r"Subcommand '(\w+)'", message)
    unknown = re.findall(r"unrecognized arguments: (.*)", message)
    options = _known_options(parser, subcommand.group(1) if subcommand else None)
    if unknown:
        keys = [a.split("=")[0] for a in unknown[0].split() if a.startswith("--")]
        return _unknown_keys_message([k.removeprefix("--") for k in keys], options) if keys else message
    bad_key = re.search(r"does not accept (?:nested )?(?:option|key) '([^']+)'", message)
    if bad_key:
        return _unknown_keys_message([bad_key.group(1)], options)
    pattern = r'Parser key "(\w+)".*Given value: NestedArg\(key=.([^\']+)., val=(.*)\)'
    nested = re.search(pattern, message, re.S)
    if nested:
        return _bad_value_message(nested.group(1), nested.group(2), nested.group(3), message)
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


def _user_error(err: BaseException) -> UserError | None:
    """The UserError behind ``err``: jsonargparse wraps errors raised while instantiating classes."""
    while err is not None:
        if isinstance(err, UserError):
            return err
        err = err.__cause__ or err.__context__
    return None


def main(args=None) -> None:
    argv = list(sys.argv[1:] if args is None else args)
    # --debug (or CNNLAB_DEBUG=1): show the traceback behind a one-line error
    debug = "--debug" in argv or os.environ.get("CNNLAB_DEBUG", "") not in ("", "0")
    if "--debug" in argv:
        argv.remove("--debug")
        args = argv
        sys.argv = [sys.argv[0], *argv]  # LightningCLI also reads sys.argv when args is None
    try:
        if argv and argv[0] in TOOLS:
            importlib.import_module(TOOLS[argv[0]]).main(argv[1:])
        else:
            CNNLabCLI(args=args)
    except SIGTERMException:
        raise SystemExit(128 + 15) from None  # Lightning exits 0 on SIGTERM; a stopped run is no success
    except Exception as err:
        cause = _user_error(err)
        if cause is None or debug:
            raise
        print(f"cnnlab: error: {cause}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
