"""cnnlab's own subcommands beside LightningCLI's: each module has ``main(argv)`` with its own ``--help``.

This module only names them; ``cnnlab`` imports a tool when it runs.
"""

from typing import NamedTuple


class Tool(NamedTuple):
    module: str
    description: str


TOOLS = {
    "summary": Tool(
        "cnnlab.tools.summary",
        "Print a model's card: every layer's output shape, parameters, MACs and receptive field.",
    ),
    "report": Tool(
        "cnnlab.tools.report",
        "Rank the runs under a logs folder by validation accuracy, as a table and a plot.",
    ),
    "export": Tool(
        "cnnlab.tools.export",
        "Export a checkpoint for deployment: ONNX, TorchScript, ExportedProgram or int8.",
    ),
    "compress": Tool(
        "cnnlab.tools.compress",
        "Measure a checkpoint's fp32, int8, ONNX, pruned and distilled variants side by side.",
    ),
    "sweep": Tool(
        "cnnlab.tools.sweep",
        "Run a grid x seeds or an Optuna search of fit runs, as one of any number of workers.",
    ),
}

RECIPE_OPTIONS = (
    "Recipe options as in cnnlab fit: --config RECIPE (a file or a recipe name, repeatable), --data CLASS, "
    "--data.KEY VALUE, --model.KEY VALUE; read after defaults.yaml"
)


def tool_parser(name: str, epilog: str = ""):
    """The ``argparse`` parser of tool ``name``, with its description; the options it does not know are
    recipe options, read by the CLI's parser (``cnnlab.cli.read_recipe``)."""
    import argparse

    return argparse.ArgumentParser(
        prog=f"cnnlab {name}",
        description=TOOLS[name].description,
        epilog=" ".join(part for part in (epilog, RECIPE_OPTIONS + ".") if part),
    )
