"""The README and docs/ say what the code does: every ``cnnlab ...`` command line in them parses, the
README's layout names every module, and the generated tables match results.yaml."""

import importlib
import re
import shlex
import sys
from pathlib import Path

import pytest

from benchmarks import model_table
from cnnlab.cli import SUBCOMMANDS, main
from cnnlab.errors import UserError
from cnnlab.lightning_cli import CNNLabCLI
from cnnlab.sweep_file import load
from cnnlab.tools import TOOLS

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDERS = {"$CKPT": "CKPT", "$NODE_RANK": "0", "$MASTER": "localhost"}


def command_lines(page: Path) -> list[str]:
    """The ``cnnlab`` command lines of a page: in code blocks (continuation lines joined) and in
    backticks, without comments and optional ``[...]`` parts."""
    text = page.read_text()
    found, blocks, inside = [], [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
            blocks.append([]) if inside else None
        elif inside:
            blocks[-1].append(line)
    for block in blocks:
        for line in "\n".join(block).replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith(("cnnlab ", "srun cnnlab ")) or " -m cnnlab.cli " in line:
                found.append(line)
    found += [
        c
        for c in re.findall(r"`(cnnlab [^`\n]+)`", text)
        if not re.search(r"<|\.\.\.|\|", c) and len(c.split()) >= 3
    ]
    return found


def normalise(line: str) -> list[str]:
    for name, value in PLACEHOLDERS.items():
        line = line.replace(name, value)
    line = re.sub(r"\s\[[^\]]*\]", "", line)  # optional parts
    words = shlex.split(line)
    if "cnnlab.cli" in words:  # torchrun ... -m cnnlab.cli ARGS
        words = words[words.index("cnnlab.cli") + 1 :]
    else:
        words = words[words.index("cnnlab") + 1 :]
    return words


def parses(words: list[str], capsys) -> None:
    """Parse a command line as cnnlab does, without running it."""
    if not words or words[0] in ("--help", "-h"):
        main(words)
        return
    if words[0] in SUBCOMMANDS:
        try:
            CNNLabCLI(args=words, instantiate=False)
        except SystemExit as done:  # --print_config prints and exits
            assert done.code in (0, None) and "--print_config" in words
        return
    module = importlib.import_module(TOOLS[words[0]].module)
    if "--help" in words:  # a tool's help prints and exits
        with pytest.raises(SystemExit, match="0"):
            module.main(words[1:])
        return
    if words[0] == "report":
        module.parse_args(words[1:])
        return
    args, recipe_args = module.parser().parse_known_args(words[1:])
    if words[0] == "sweep":  # fit options of every trial, after the sweep's recipe
        CNNLabCLI(args=["fit", *load(args.sweep).base_args(), *recipe_args], instantiate=False)
    elif recipe_args:  # what the tool hands to the recipe reader must parse there too
        CNNLabCLI(args=["predict", *recipe_args], instantiate=False)


ALL = [(page.name, line) for page in PAGES for line in command_lines(page)]


def test_the_pages_hold_commands():
    assert len([p for p, _ in ALL if p == "README.md"]) >= 10 and len(ALL) >= 40


@pytest.mark.parametrize("page, line", ALL, ids=[f"{p}:{i}" for i, (p, _) in enumerate(ALL)])
def test_every_command_line_in_the_readme_and_docs_parses(page, line, in_tmp, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])
    parses(normalise(line), capsys)


def test_a_wrong_command_line_would_fail_the_check(in_tmp, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])
    with pytest.raises(UserError, match="unknown config key 'trainer.max_epohcs'"):
        parses(normalise("cnnlab fit --config mnist_lenet5 --trainer.max_epohcs 3"), capsys)


def test_the_readme_layout_names_every_module():
    layout = re.search(r"## Layout\n\n```\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    named = set(re.findall(r"[\w]+", layout))
    modules = [
        p
        for folder in ("cnnlab", "cnnlab/callbacks", "cnnlab/tools", "models", "datamodules")
        for p in (ROOT / folder).glob("*.py")
        if p.stem != "__init__"
    ]
    missing = sorted(str(p.relative_to(ROOT)) for p in modules if p.stem not in named)
    assert not missing, f"README's layout does not name {missing}"


# python -m benchmarks.model_table --write regenerates all three
def test_the_readme_table_and_recipe_headers_are_up_to_date():
    results = model_table.load()
    assert model_table.readme_table(results) in (ROOT / "README.md").read_text()
    for name in model_table.recipes():  # each recipe's header states its newest full-length result
        assert model_table.measured_line(results, name) in (ROOT / "experiments" / f"{name}.yaml").read_text()


@pytest.mark.slow  # builds every architecture to count its parameters and MACs
def test_the_results_page_is_up_to_date():
    page = (ROOT / "docs" / "results.md").read_text()
    assert page == model_table.results_page(model_table.load())
