"""``cnnlab summary``: a model's card, one row per layer in execution order (``cnnlab.model_card``).

    cnnlab summary --config mnist_lenet5                     # the recipe's model at its data's shape
    cnnlab summary --model.arch resnet18                     # 3x32x32 inputs, 10 classes
    cnnlab summary --model.arch lenet5 --data.in_channels 1 --data.image_size 28

The options are read as ``cnnlab fit`` reads them: the model's shape (classes, channels, image size)
comes from the data module, ``ImageFilesDataModule``'s options when no data set is named.
"""

import sys
from pathlib import Path

from cnnlab.tools import tool_parser


def parser():
    p = tool_parser("summary", "Input shape: the recipe's data module, or --data.in_channels and "
                    "--data.image_size (default 3 and 32) and --data.num_classes (10).")  # fmt: skip
    p.add_argument("--output", help="also write the table to this Markdown file")
    return p


def main(argv: list[str] | None = None) -> None:
    args, recipe_args = parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    from cnnlab.errors import UserError
    from cnnlab.lightning_cli import read_recipe
    from cnnlab.model_card import render, summarize

    model = read_recipe(recipe_args).model
    hp = model.hparams
    shape = (hp.in_channels, hp.image_size, hp.image_size)
    try:
        text = render(summarize(model.model, shape, hp.arch))
    except RuntimeError as err:  # e.g. an image too small for the architecture
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"{hp.arch} cannot run on a {shape} image: {first}") from err
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
