"""One reader of recipes: every command and the Python API read them through the CLI's parser, with
defaults.yaml first; recipes are named or given as files; run folders of earlier versions still load."""

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint

from cnnlab import recipes
from cnnlab.callbacks import ExactResume, RunInfo, SaveOnInterrupt
from cnnlab.cli import build, main
from cnnlab.lightning_cli import CNNLabCLI
from tests.cli_args import EXPERIMENTS, QUIET, on_data, run_main


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])


def test_recipes_ship_in_the_package_and_are_found_by_name():
    assert recipes.defaults_file().is_file()
    assert {p.name for p in recipes.recipes_dir().glob("*.yaml")} == {
        p.name for p in EXPERIMENTS.glob("*.yaml")
    }
    assert recipes.resolve("mnist_lenet5") == str(recipes.recipes_dir() / "mnist_lenet5.yaml")
    assert recipes.resolve("mnist_lenet5.yaml") == recipes.resolve("mnist_lenet5")


@pytest.mark.slow
def test_a_recipe_name_runs_from_any_folder(mnist_root, in_tmp):
    data = on_data(mnist_root, workers=0)
    cli = CNNLabCLI(["fit", "--config", "mnist_lenet5", *data, "--trainer.max_epochs", "1",
                     "--test_after_fit", "false", *QUIET])  # fmt: skip
    assert Path(cli.trainer.log_dir) == Path("lightning_logs/mnist_lenet5/version_0")
    assert (in_tmp / "lightning_logs/mnist_lenet5/version_0/checkpoints/last.ckpt").is_file()
    record = yaml.safe_load((in_tmp / "lightning_logs/mnist_lenet5/version_0/run.yaml").read_text())
    assert record["defaults"] == str(recipes.defaults_file())


def test_an_unknown_recipe_is_one_line_listing_the_recipes(in_tmp, capsys):
    code, err = run_main(["fit", "--config", "mnist_lenet"], capsys)
    assert code == 2 and err.count("\n") == 0
    assert "config mnist_lenet is neither a file nor one of cnnlab's recipes" in err and "mnist_lenet5" in err


def test_print_config_names_the_defaults_file(in_tmp, capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--config", "mnist_lenet5", "--print_config"])
    out = capsys.readouterr().out
    assert f"# cnnlab defaults: {recipes.defaults_file()}" in out
    assert "cnnlab.callbacks.ExactResume" in out  # what defaults.yaml adds


@pytest.mark.parametrize("api", ["build", "run=False"])
def test_the_python_api_applies_the_defaults_as_the_command_does(api, mnist_root, in_tmp):
    args = ["--config", "mnist_lenet5", *on_data(mnist_root, workers=0)]
    if api == "build":
        built = build(args)
        trainer, model = built.trainer, built.model
    else:
        cli = CNNLabCLI(args, run=False)
        trainer, model = cli.trainer, cli.model
    kinds = {type(c) for c in trainer.callbacks}
    assert {ModelCheckpoint, ExactResume, SaveOnInterrupt, RunInfo} <= kinds
    defaults = yaml.safe_load(recipes.defaults_file().read_text())  # the recipe leaves these to it
    assert trainer.max_epochs == defaults["trainer"]["max_epochs"]
    optimizer = model.hparams.optimizer
    assert optimizer["class_path"] == defaults["optimizer"]["class_path"]
    assert optimizer["init_args"]["lr"] == defaults["optimizer"]["init_args"]["lr"]
    assert trainer.logger.name == "mnist_lenet5"
    assert not (in_tmp / "lightning_logs").exists()  # built, not run


def test_build_runs_like_the_command(mnist_root, in_tmp):
    built = build(
        ["--config", "mnist_lenet5", *on_data(mnist_root, workers=0), "--trainer.max_epochs", "1", *QUIET]
    )
    built.trainer.fit(built.model, datamodule=built.datamodule)
    assert (in_tmp / "lightning_logs/mnist_lenet5/version_0/checkpoints/last.ckpt").is_file()


def test_a_linked_model_option_points_to_the_data(mnist_root, in_tmp, capsys):
    code, err = run_main(
        ["fit", "--config", "mnist_lenet5", *on_data(mnist_root), "--model.num_classes", "5"], capsys
    )
    assert code == 2 and "model option num_classes comes from the data module" in err


# -- run folders of earlier versions ----------------------------------------------------------------------
OLD_NAMES = {
    "cnnlab.models.": "models.",
    "cnnlab.datamodules.": "datamodules.",
    "cnnlab.checkpoint_io.": "cnnlab.checkpoints.",
    "cnnlab.callbacks.EvaluationReport": "cnnlab.evaluation.EvaluationReport",
    "cnnlab.callbacks.TensorBoardPictures": "cnnlab.pictures.TensorBoardPictures",
    "cnnlab.callbacks.ExactResume": "cnnlab.resume.ExactResume",
    "cnnlab.callbacks.SaveOnInterrupt": "cnnlab.safety.SaveOnInterrupt",
    "cnnlab.callbacks.StopOnNonFiniteLoss": "cnnlab.safety.StopOnNonFiniteLoss",
    "cnnlab.callbacks.RunInfo": "cnnlab.runinfo.RunInfo",
    "cnnlab.callbacks.ModelSummaryFile": "cnnlab.summary.ModelSummaryFile",
}


def as_written_before(text: str) -> str:
    for new, old in OLD_NAMES.items():
        text = text.replace(new, old)
    return text


@pytest.mark.slow
def test_checkpoints_and_run_folders_of_earlier_versions_still_load(mnist_root, in_tmp, capsys):
    main(["fit", "--config", "mnist_lenet5", *on_data(mnist_root, workers=0), "--trainer.max_epochs", "1",
          "--test_after_fit", "false", *QUIET])  # fmt: skip
    run = in_tmp / "lightning_logs/mnist_lenet5/version_0"
    old = in_tmp / "old/mnist_lenet5/version_0"
    shutil.copytree(run, old)
    config = old / "config.yaml"
    config.write_text(as_written_before(config.read_text()))
    assert "models.ImageClassifier" in config.read_text() and "cnnlab.models" not in config.read_text()
    ckpt = old / "checkpoints/last.ckpt"
    saved = torch.load(ckpt, weights_only=True)
    saved["hyper_parameters"]["_class_path"] = "models.ImageClassifier"
    torch.save(saved, ckpt)
    # the tools read the old config.yaml beside the checkpoint, and fit/test read it as a recipe
    main(["export", "--ckpt_path", str(ckpt), "--format", "torchscript", "--output", str(in_tmp / "m.pt")])
    assert json.loads((in_tmp / "m.pt.json").read_text())["input_size"] == [1, 28, 28]
    save_dir = ["--trainer.logger.init_args.save_dir", "old"]
    main(["test", "--config", str(config), "--ckpt_path", str(ckpt), *save_dir, *QUIET])
    assert "test/acc" in capsys.readouterr().out
