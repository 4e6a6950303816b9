"""The libraries (models/, datamodules/) import nothing of the application that imports them (the CLI,
callbacks, tools and their libraries), whatever name they are installed under."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("models", "datamodules")
APPLICATION = "cnnlab"


def imports_of(path: Path) -> list[tuple[int, int, str]]:
    """(line, relative level, module) of every import in ``path``, and of every string passed to
    ``importlib.import_module`` or ``__import__``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, 0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, node.level, node.module or ""))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, 0, node.args[0].value))
    return found


def offending(path: Path) -> list[str]:
    """The imports in a library file that could reach the application or name the libraries by a
    top-level name they are not installed under."""
    bad = []
    for line, level, module in imports_of(path):
        top = module.partition(".")[0]
        if level >= 2:  # from .. import x: above the library, into whatever package holds it
            bad.append(f"{path.name}:{line}: from {'.' * level}{module}")
        elif level == 0 and top in (APPLICATION, *LIBRARIES):
            bad.append(f"{path.name}:{line}: import {module}")
    return bad


@pytest.mark.parametrize("library", LIBRARIES)
def test_the_libraries_import_nothing_of_the_application(library):
    files = sorted((ROOT / library).glob("**/*.py"))
    assert files
    bad = [b for f in files for b in offending(f)]
    assert not bad, f"{library}/ reaches outside itself: {bad}"


def test_the_check_catches_what_it_looks_for(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text(
        "import cnnlab.cli\nfrom cnnlab.errors import UserError\nfrom .. import tools\n"
        "from models.registry import get_model\nimport importlib\nimportlib.import_module('cnnlab.tools')\n"
        "from .registry import get_model\nimport torch\n"
    )
    assert [b.split(": ", 1)[1] for b in offending(source)] == [
        "import cnnlab.cli",
        "import cnnlab.errors",
        "from ..",
        "import models.registry",
        "import cnnlab.tools",
    ]


def test_importing_the_installed_libraries_loads_no_application_module():
    code = (
        "import sys, cnnlab.models, cnnlab.datamodules; "
        "print(sorted(m for m in sys.modules if m.startswith('cnnlab.') and "
        "not m.startswith(('cnnlab.models', 'cnnlab.datamodules'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]"
