"""Files from elsewhere are data: a run's config.yaml, a recipe or a checkpoint never makes cnnlab import
or call a class outside its allow-list. Each attack below once ran its code; a marker file shows whether
it ran again."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnlab.models import ImageClassifier
from tests.checkpoints import make_checkpoint
from tests.cli_args import child_env, on_data, recipe, run_main

PAYLOAD = "import pathlib\npathlib.Path({marker!r}).touch()\n\ndef run(*args, **kwargs):\n    pass\n"


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])


@pytest.fixture
def marker(in_tmp) -> Path:
    """A file the attacker's code creates when it runs; a package ``evilpkg`` in the working folder
    and a ``hubconf.py`` there that create it on import."""
    path = in_tmp / "payload_ran"
    (in_tmp / "evilpkg").mkdir()
    (in_tmp / "evilpkg" / "__init__.py").write_text(PAYLOAD.format(marker=str(path)))
    (in_tmp / "hubconf.py").write_text(PAYLOAD.format(marker=str(path)).replace("def run", "def x"))
    return path


def run_folder_checkpoint(root: Path) -> Path:
    """A clean checkpoint in a run folder, as cnnlab fit leaves it."""
    return make_checkpoint(
        root / "lightning_logs" / "mnist_lenet5" / "version_0" / "checkpoints" / "last.ckpt"
    )


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnlab: error: "), err
    return lines[0]


@pytest.mark.parametrize("tool", ["export", "compress"])
def test_a_crafted_config_yaml_beside_a_clean_checkpoint_is_refused(tool, marker, in_tmp, capsys):
    ckpt = run_folder_checkpoint(in_tmp)
    (ckpt.parent.parent / "config.yaml").write_text(
        "data:\n  class_path: torch.hub.load\n"
        f"  init_args: {{repo_or_dir: {str(in_tmp)!r}, model: x, source: local}}\n"
    )
    args = ["--ckpt_path", str(ckpt)] + (["--format", "onnx"] if tool == "export" else [])
    code, err = run_main([tool, *args], capsys)
    line = one_line(err)
    assert code == 2 and not marker.exists()
    assert "data.class_path" in line and "torch.hub.load" in line and "nothing was imported" in line
    assert not list(in_tmp.glob("*.onnx")) and not list(in_tmp.glob("*.md"))


@pytest.mark.parametrize("class_path", ["evilpkg.ImageClassifier", "this.ImageClassifier"])
@pytest.mark.parametrize("subcommand", ["test", "predict"])
def test_a_checkpoint_naming_another_module_is_refused_before_importing_it(
    subcommand, class_path, marker, mnist_root, in_tmp, capsys
):
    ckpt = make_checkpoint(in_tmp / "named.ckpt")
    saved = torch.load(ckpt, weights_only=True)
    saved["hyper_parameters"]["_class_path"] = class_path
    torch.save(saved, ckpt)
    data = [*recipe("mnist_lenet5"), *on_data(mnist_root, workers=0)] if subcommand == "test" else []
    code, err = run_main([subcommand, *data, "--ckpt_path", str(ckpt), "--data.predict_dir", "x"], capsys)
    line = one_line(err)
    assert code == 2 and not marker.exists()
    assert f"hyper_parameters._class_path in {ckpt} names {class_path}" in line
    assert "Beautiful is better than ugly" not in capsys.readouterr().out  # `import this` never ran


@pytest.mark.slow
def test_the_torchrun_form_does_not_import_a_package_of_the_working_folder(marker, in_tmp):
    # python -m cnnlab.cli puts the working folder first on sys.path, where the named package lies
    ckpt = make_checkpoint(in_tmp / "named.ckpt")
    saved = torch.load(ckpt, weights_only=True)
    saved["hyper_parameters"]["_class_path"] = "evilpkg.ImageClassifier"
    torch.save(saved, ckpt)
    done = subprocess.run(
        [sys.executable, "-m", "cnnlab.cli", "predict", "--ckpt_path", str(ckpt), "--data.predict_dir", "x"],
        cwd=in_tmp,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and not marker.exists()
    assert "names evilpkg.ImageClassifier" in one_line(done.stderr)


def test_load_from_checkpoint_imports_no_instantiator_a_checkpoint_names(marker, in_tmp, monkeypatch):
    monkeypatch.syspath_prepend(str(in_tmp))
    ckpt = make_checkpoint(in_tmp / "inst.ckpt")
    saved = torch.load(ckpt, weights_only=True)
    saved["hyper_parameters"]["_instantiator"] = "evilpkg.run"
    torch.save(saved, ckpt)
    model = ImageClassifier.load_from_checkpoint(ckpt)
    assert type(model) is ImageClassifier and model.hparams.arch == "lenet5"
    assert not marker.exists()


def test_a_checkpoint_naming_an_untrusted_optimizer_is_refused(marker, in_tmp, monkeypatch):
    monkeypatch.syspath_prepend(str(in_tmp))
    ckpt = make_checkpoint(in_tmp / "opt.ckpt")
    saved = torch.load(ckpt, weights_only=True)
    saved["hyper_parameters"]["optimizer"] = {"class_path": "evilpkg.Optimizer", "init_args": {}}
    torch.save(saved, ckpt)
    with pytest.raises(Exception, match=r"hyper_parameters.optimizer.class_path .* names evilpkg.Optimizer"):
        ImageClassifier.load_from_checkpoint(ckpt)
    assert not marker.exists()


def test_a_recipe_naming_an_untrusted_callback_names_the_key(marker, mnist_root, in_tmp, capsys):
    evil = in_tmp / "evil.yaml"
    evil.write_text("trainer:\n  callbacks:\n    - class_path: evilpkg.Callback\n")
    code, err = run_main(
        ["fit", *recipe("mnist_lenet5"), "--config", str(evil), *on_data(mnist_root)], capsys
    )
    line = one_line(err)
    assert code == 2 and not marker.exists()
    assert f"trainer.callbacks[0].class_path in {evil} names evilpkg.Callback" in line
    assert "CNNLAB_TRUST=evilpkg" in line  # how to allow one's own code


def test_a_callable_on_the_command_line_is_refused_too(marker, mnist_root, in_tmp, capsys):
    args = ["fit", *recipe("mnist_lenet5"), *on_data(mnist_root), "--trainer.callbacks+=LambdaCallback"]
    code, err = run_main([*args, "--trainer.callbacks.on_fit_start", "evilpkg.run"], capsys)
    assert code == 2 and not marker.exists()
    assert "evilpkg.run" in one_line(err)
