"""The ``cnnlab`` command: LightningCLI's subcommands with cnnlab's defaults, and cnnlab's own tools.

    cnnlab fit --config mnist_lenet5           # train a recipe, then test its best checkpoint
    cnnlab predict --ckpt_path CKPT --data.predict_dir my_images/
    cnnlab summary|report|export|compress ...   # the tools, each with --help

Recipes are read by ``cnnlab.lightning_cli.CNNLabCLI`` (defaults.yaml first, trusted classes only);
``build`` gives the Python API the objects a command would run. This module imports Lightning only
when a command needs it, so ``cnnlab --help`` answers at once.
"""

import importlib
import os
import sys
import textwrap

from cnnlab import __version__
from cnnlab.tools import TOOLS

SUBCOMMANDS = {
    "fit": "Train a model from a recipe, then test its best checkpoint on the test split.",
    "validate": "Measure a model (a checkpoint, with --ckpt_path) on the validation split.",
    "test": "Measure a model (a checkpoint, with --ckpt_path) on the test split, with a per-class report.",
    "predict": "Classify image files with a checkpoint and write the classes to a CSV file.",
}


def usage() -> str:
    """``cnnlab --help``: what cnnlab is, every subcommand and tool, and the recipes."""
    from cnnlab import recipes

    width = max(map(len, [*SUBCOMMANDS, *TOOLS]))
    lines = [
        "usage: cnnlab <command> [options]   (cnnlab <command> --help for its options)",
        "",
        "cnnlab trains, tests and compares classic image-classification CNNs (SimpleCNN, LeNet-5, AlexNet,",
        "VGG, ResNet, a small ViT, MobileNetV2) on MNIST, CIFAR-10 or your own image folder, from recipes,",
        "with Lightning doing devices, mixed precision, checkpoints and TensorBoard logging.",
        "",
        "Training (LightningCLI; options from the recipe's classes):",
        *(f"  {name:<{width}}  {text}" for name, text in SUBCOMMANDS.items()),
        "",
        "Tools:",
        *(f"  {name:<{width}}  {tool.description}" for name, tool in TOOLS.items()),
        "",
        *textwrap.wrap(
            f"Recipes (--config NAME, or a path to a YAML file): {', '.join(recipes.recipe_names())}.",
            100,
            subsequent_indent="  ",
        ),
        "Add --debug to any command to see the traceback behind a one-line error.",
    ]
    return "\n".join(lines)


def build(args: list[str], with_trainer: bool = True):
    """The trainer, model and data module that ``cnnlab ARGS`` would run, built exactly as the command
    builds them (defaults, recipe names, run naming, checkpoint, trusted classes), without running them:
    a ``Built(trainer, model, datamodule, cli)``.

    ``args`` may start with a subcommand (``fit`` when it does not)::

        from cnnlab.cli import build

        built = build(["--config", "mnist_lenet5", "--data.data_dir", "data"])
        built.trainer.fit(built.model, datamodule=built.datamodule)
    """
    from cnnlab.lightning_cli import Built, CNNLabCLI

    args = list(args)
    if not args or args[0] not in SUBCOMMANDS:
        args = ["fit", *args]
    cli = CNNLabCLI(args=args, execute=False, with_trainer=with_trainer)
    return Built(cli.trainer, cli.model, cli.datamodule, cli)


def main(args=None) -> None:
    argv = list(sys.argv[1:] if args is None else args)
    # --debug (or CNNLAB_DEBUG=1): show the traceback behind a one-line error
    debug = "--debug" in argv or os.environ.get("CNNLAB_DEBUG", "") not in ("", "0")
    if "--debug" in argv:
        argv.remove("--debug")
        args = argv
        sys.argv = [sys.argv[0], *argv]  # LightningCLI also reads sys.argv when args is None
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    if argv[0] == "--version":
        print(f"cnnlab {__version__}")
        return
    try:
        if argv[0] in TOOLS:
            importlib.import_module(TOOLS[argv[0]].module).main(argv[1:])
        elif argv[0] in SUBCOMMANDS:
            from cnnlab.lightning_cli import CNNLabCLI

            CNNLabCLI(args=args)
        else:
            from cnnlab.errors import UserError

            raise UserError(
                f"unknown command {argv[0]!r}; choose one of {', '.join([*SUBCOMMANDS, *TOOLS])} "
                "(cnnlab --help says what each does)"
            )
    except SystemExit as stop:
        if type(stop).__name__ == "SIGTERMException":  # Lightning's, raised on SIGTERM with exit status 0
            raise SystemExit(128 + 15) from None  # a stopped run is no success
        raise
    except Exception as err:
        from cnnlab.errors import user_error

        cause = user_error(err)
        if cause is None or debug:
            raise
        print(f"cnnlab: error: {cause}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
