import contextlib
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnlab.lightning_cli import CNNLabCLI
from tests.checkpoints import make_checkpoint
from tests.cli_args import EXPERIMENTS, QUIET, child_env, on_data, on_folder, recipe, run_main
from tests.fakedata import place_resnet18_weights

RECIPES = sorted(p for p in EXPERIMENTS.glob("*.yaml") if p.name != "defaults.yaml")
IMAGE_SHAPE = {  # (in_channels, image_size)
    "MNISTDataModule": (1, 28),
    "FashionMNISTDataModule": (1, 28),
    "KMNISTDataModule": (1, 28),
    "CIFAR10DataModule": (3, 32),
    "CIFAR100DataModule": (3, 32),
    "SVHNDataModule": (3, 32),
    "STL10DataModule": (3, 96),
}


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])


def data_args(recipe: Path, roots: dict) -> list[str]:
    data = yaml.safe_load(recipe.read_text())["data"]["class_path"].rsplit(".", 1)[-1]
    return on_data(roots[data], workers=0)


@pytest.fixture
def roots(request):
    """The fake data set of every data module a recipe names (session fixtures: each made once)."""
    fixtures = {
        "MNISTDataModule": "mnist_root",
        "FashionMNISTDataModule": "fashion_mnist_root",
        "KMNISTDataModule": "kmnist_root",
        "CIFAR10DataModule": "cifar_root",
        "CIFAR100DataModule": "cifar100_root",
        "SVHNDataModule": "svhn_root",
        "STL10DataModule": "stl10_root",
    }
    return {name: request.getfixturevalue(fixture) for name, fixture in fixtures.items()}


def checkpoint_args(recipe: Path, folder: Path) -> list[str]:
    """Checkpoints for a recipe's model options that read one: a teacher, the weights to start from."""
    config = yaml.safe_load(recipe.read_text())
    model = config["model"].get("init_args", {})
    shape = IMAGE_SHAPE[config["data"]["class_path"].rsplit(".", 1)[-1]]
    args = []
    if "teacher" in model:
        args += ["--model.teacher", str(make_checkpoint(folder / "teacher.ckpt", "lenet5", *shape))]
    if model.get("init_from"):
        args += ["--model.init_from", str(make_checkpoint(folder / "init.ckpt", model["arch"], *shape))]
    return args


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_experiment_runs_fast_dev_run(recipe, roots, in_tmp, monkeypatch):
    if "pretrained: true" in recipe.read_text():
        monkeypatch.setenv("TORCH_HOME", str(in_tmp / "torch"))
        place_resnet18_weights(in_tmp / "torch")
    cli = CNNLabCLI(
        args=[
            "fit",
            "--config",
            str(recipe),
            *data_args(recipe, roots),
            *checkpoint_args(recipe, in_tmp),
            "--data.batch_size",
            "8",
            "--trainer.fast_dev_run",
            "1",
            *QUIET,
        ]
    )
    assert cli.trainer.global_step == 1
    assert "test/acc" in cli.trainer.callback_metrics  # the post-fit test ran


@pytest.mark.slow
def test_fit_learns_logs_by_recipe_name_and_tests_the_best_checkpoint(mnist_root, in_tmp):
    cli = CNNLabCLI(
        args=[
            "fit",
            *recipe("mnist_cnn"),
            *on_data(mnist_root, batch_size=32, workers=0),
            "--trainer.max_epochs",
            "3",
            "--trainer.log_every_n_steps",
            "4",
            *QUIET,
        ]
    )
    run = in_tmp / "lightning_logs" / "mnist_cnn" / "version_0"
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "last.ckpt" in checkpoints and any(n.startswith("epoch") for n in checkpoints)
    assert (run / "config.yaml").is_file()
    assert cli.trainer.callback_metrics["test/acc"] > 0.5  # chance is 0.1
    logged = scalars(run)
    for tag in (
        "train/loss",
        "train/acc",
        "val/loss",
        "val/acc",
        "val/f1",
        "val/acc_top5",
        "test/acc",
        "test/precision",
        "test/recall",
        "lr-Adam",
    ):
        assert tag in logged, tag
    assert len(logged["val/acc"]) == 3


@pytest.mark.slow
def test_resume_last_continues_in_the_same_folder_without_duplicate_steps(mnist_root, in_tmp):
    args = ["fit", *recipe("mnist_lenet5"), *on_data(mnist_root, batch_size=60, workers=0), *QUIET]
    first = CNNLabCLI(args=[*args, "--trainer.max_epochs", "1"])
    steps_per_epoch = first.trainer.global_step
    resumed = CNNLabCLI(args=[*args, "--trainer.max_epochs", "2", "--ckpt_path", "last"])
    assert resumed.trainer.global_step == 2 * steps_per_epoch
    assert resumed.trainer.current_epoch == 2
    runs = sorted(p.name for p in (in_tmp / "lightning_logs" / "mnist_lenet5").iterdir())
    assert runs == ["version_0"]
    logged = scalars(in_tmp / "lightning_logs" / "mnist_lenet5" / "version_0")
    val_steps = [step for step, _ in logged["val/acc"]]
    assert len(val_steps) == 2 and len(set(val_steps)) == 2
    assert len(logged["test/acc"]) == 1  # the first run's post-fit test is superseded


@pytest.mark.slow
def test_test_subcommand_takes_the_architecture_from_the_checkpoint(mnist_root, in_tmp):
    common = [*on_data(mnist_root, workers=0), *QUIET]
    brief = ["--trainer.max_epochs", "1", "--test_after_fit", "false"]
    CNNLabCLI(args=["fit", *recipe("mnist_lenet5"), *common, *brief])
    ckpt = in_tmp / "lightning_logs" / "mnist_lenet5" / "version_0" / "checkpoints" / "last.ckpt"
    cli = CNNLabCLI(args=["test", *recipe("mnist_cnn"), *common, "--ckpt_path", str(ckpt)])
    assert cli.model.hparams.arch == "lenet5"
    assert "test/acc" in cli.trainer.callback_metrics


@pytest.mark.slow
def test_run_time_options_on_the_command_line_win_over_the_checkpoint(mnist_root, in_tmp):
    lenet5 = recipe("mnist_lenet5")
    data = [*on_data(mnist_root), *QUIET]
    brief = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--test_after_fit", "false"]
    CNNLabCLI(args=["fit", *lenet5, *data, *brief, "--model.channels_last", "false"])  # and tta false
    ckpt = in_tmp / "lightning_logs" / "mnist_lenet5" / "version_0" / "checkpoints" / "last.ckpt"
    test = ["test", *lenet5, *data, "--ckpt_path", str(ckpt)]
    for option in ("--model.tta", "--model.init_args.tta=true"):
        cli = CNNLabCLI(args=[*test, option, "true"] if "=" not in option else [*test, option])
        assert cli.model.hparams.tta is True
        assert cli.model.hparams.channels_last is False  # not given: the checkpoint's value
    # options that define the weights still come from the checkpoint
    cli = CNNLabCLI(args=[*test, "--model.arch", "simplecnn"])
    assert cli.model.hparams.arch == "lenet5" and cli.model.hparams.tta is False


def test_configs_merge_in_order_and_print(in_tmp, capsys):
    override = in_tmp / "small.yaml"
    override.write_text("data:\n  init_args:\n    batch_size: 7\n")
    with pytest.raises(SystemExit) as done:
        CNNLabCLI(args=["fit", *recipe("mnist_lenet5"), "--config", str(override), "--print_config"])
    assert done.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["data"]["init_args"]["batch_size"] == 7
    assert printed["model"]["init_args"]["arch"] == "lenet5"
    assert printed["optimizer"]["class_path"] == "torch.optim.Adam"  # from experiments/defaults.yaml
    assert "num_classes" not in printed["model"]["init_args"]  # linked from the data module


@pytest.mark.slow
def test_subclass_mode_options(folder_root, in_tmp):
    cli = CNNLabCLI(
        args=[
            "fit",
            *recipe("cifar10_simplecnn"),
            *on_folder(folder_root, workers=0),
            "--optimizer",
            "SGD",
            "--optimizer.lr",
            "0.05",
            "--lr_scheduler",
            "WarmupCosineLR",
            "--lr_scheduler.warmup",
            "0.25",
            "--trainer.callbacks+=EarlyStopping",
            "--trainer.callbacks.monitor",
            "val/loss",
            "--trainer.max_epochs",
            "2",
            "--test_after_fit",
            "false",
            *QUIET,
        ]
    )
    assert cli.model.hparams.num_classes == 3 and cli.model.hparams.class_names == [
        "circle",
        "square",
        "triangle",
    ]
    assert cli.model.hparams.optimizer["class_path"] == "torch.optim.SGD"
    assert {type(c) for c in cli.trainer.callbacks} >= {EarlyStopping, ModelCheckpoint}
    scheduler = cli.trainer.lr_scheduler_configs[0]
    assert scheduler.interval == "step" and scheduler.scheduler.total_steps == cli.trainer.global_step


def test_unknown_architecture_is_one_line_listing_known_ones(mnist_root, in_tmp, capsys):
    args = ["fit", *recipe("mnist_lenet5"), "--model.arch", "lenet6", "--data.data_dir", str(mnist_root)]
    code, err = run_main(args, capsys)
    assert code == 2
    last = err.splitlines()[-1]
    assert "unknown architecture 'lenet6'" in last and "lenet5" in last and "resnet18" in last


def test_missing_data_is_one_line_and_leaves_no_run(in_tmp, capsys):
    code, err = run_main(["fit", *recipe("mnist_lenet5"), *on_data("elsewhere"), *QUIET], capsys)
    assert code == 2
    assert err.splitlines()[-1].startswith("cnnlab: error: MNIST not found in ")
    assert "Traceback" not in err


def test_switching_off_checkpoints_and_logger_drops_their_callbacks(mnist_root, in_tmp):
    config = EXPERIMENTS / "mnist_cnn.yaml"
    off = [
        "--trainer.enable_checkpointing",
        "false",
        "--trainer.logger",
        "false",
        "--trainer.max_epochs",
        "1",
    ]
    cli = CNNLabCLI(
        args=["fit", "--config", str(config), *data_args(config, {"MNISTDataModule": mnist_root}), *off]
    )
    assert not cli.trainer.checkpoint_callbacks
    assert "test/acc" in cli.trainer.callback_metrics
    assert not (in_tmp / "lightning_logs").exists()


def test_lightnings_cloud_logger_tip_is_not_printed(mnist_root, in_tmp):
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    lightning_logger = logging.getLogger("lightning.pytorch")  # Lightning's own handler sits here
    lightning_logger.addHandler(handler)
    try:
        CNNLabCLI(
            args=[
                "fit",
                *recipe("mnist_cnn"),
                *on_data(mnist_root, workers=0),
                "--trainer.fast_dev_run",
                "1",
            ],
        )
    finally:
        lightning_logger.removeHandler(handler)
    assert any("GPU available" in m for m in seen)  # Lightning's other messages still show
    assert not any("litlogger" in m for m in seen)


@pytest.mark.parametrize("emulated", [True, False])
def test_recipes_bf16_runs_as_fp32_only_where_the_cpu_would_emulate_it(
    emulated, mnist_root, in_tmp, monkeypatch
):
    monkeypatch.setattr("cnnlab.lightning_cli.bf16_is_emulated", lambda accelerator: emulated)
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logging.getLogger("lightning.pytorch").addHandler(handler)
    try:
        cli = CNNLabCLI(args=[*recipe("mnist_speedrun"), *on_data(mnist_root)], run=False)
    finally:
        logging.getLogger("lightning.pytorch").removeHandler(handler)
    assert cli.trainer.precision == ("32-true" if emulated else "bf16-mixed")  # the recipe says bf16-mixed
    assert any("no native bf16" in m for m in seen) == emulated
    # given on the command line, bf16 is kept, with a warning where it is emulated
    given = [*recipe("mnist_speedrun"), *on_data(mnist_root), "--trainer.precision", "bf16-mixed"]
    with pytest.warns(UserWarning, match="emulated") if emulated else contextlib.nullcontext():
        cli = CNNLabCLI(args=given, run=False)
    assert cli.trainer.precision == "bf16-mixed"


def test_bf16_is_never_called_emulated_on_a_gpu():
    from cnnlab.lightning_cli import bf16_is_emulated

    assert not bf16_is_emulated("gpu") and not bf16_is_emulated("cuda")


@pytest.mark.slow
def test_the_learning_rate_finder_runs_from_the_command_line_and_the_run_trains_with_its_suggestion(
    mnist_root, in_tmp
):
    cli = CNNLabCLI(
        args=[
            "fit",
            *recipe("mnist_cnn"),
            *on_data(mnist_root, batch_size=8, workers=0),
            "--trainer.max_epochs",
            "1",
            "--trainer.callbacks+=LearningRateFinder",
            "--trainer.callbacks.num_training_steps",
            "40",
            "--trainer.callbacks.early_stop_threshold",
            "null",
            "--test_after_fit",
            "false",
            *QUIET,
        ]
    )
    run = in_tmp / "lightning_logs" / "mnist_cnn" / "version_0"
    suggestion = yaml.safe_load((run / "run.yaml").read_text())["lr_finder"]["suggestion"]
    assert suggestion != 1e-3  # not the recipe's rate
    assert cli.model.lr == pytest.approx(suggestion)
    assert cli.trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(suggestion)
    assert scalars(run)["lr_finder/suggestion"][0][1] == pytest.approx(suggestion)


@pytest.mark.slow
def test_help_and_the_light_tools_start_without_importing_lightning(fit_runs, tmp_path):
    code = (
        "import contextlib, io, sys\n"
        "from cnnlab.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    main(['--help'])\n"
        "    for tool in ('summary', 'export', 'sweep'):\n"
        "        try:\n"
        "            main([tool, '--help'])\n"
        "        except SystemExit:\n"
        "            pass\n"
        f"    main(['report', {str(fit_runs[0])!r}, '--output', {str(tmp_path / 'b.md')!r},"
        f" '--plot', {str(tmp_path / 'b.png')!r}])\n"
        "assert 'cnnlab summary' in out.getvalue() and 'compress' in out.getvalue()\n"
        "print(sorted(m for m in ('lightning', 'torch', 'torchvision', 'optuna') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_runs_of_one_recipe_started_together_each_get_their_own_folder(mnist_root, in_tmp):
    short = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--test_after_fit", "false"]
    args = ["fit", *recipe("mnist_lenet5"), *on_data(mnist_root, batch_size=60, workers=0), *QUIET, *short]
    for _ in range(2):
        runs = [
            subprocess.Popen([sys.executable, "-m", "cnnlab.cli", *args], cwd=in_tmp, env=child_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]  # fmt: skip
        for run in runs:
            assert run.wait(timeout=300) == 0, run.stderr.read()[-2000:]
    folders = sorted((in_tmp / "lightning_logs" / "mnist_lenet5").iterdir())
    assert [f.name for f in folders] == [f"version_{i}" for i in range(6)]
    for folder in folders:  # each run wrote its own record and checkpoint
        assert (folder / "run.yaml").is_file() and (folder / "checkpoints" / "last.ckpt").is_file()
        assert len(list(folder.glob("events.out.tfevents.*"))) == 1


def test_small_data_still_logs_the_training_loss_a_few_times_per_epoch(mnist_root, in_tmp):
    # 360 training images in batches of 40: 9 batches an epoch, fewer than log_every_n_steps (50)
    CNNLabCLI(args=["fit", *recipe("mnist_lenet5"), *on_data(mnist_root, batch_size=40, workers=0),
                    "--trainer.max_epochs", "2", "--test_after_fit", "false", *QUIET])  # fmt: skip
    steps = [
        step for step, _ in scalars(in_tmp / "lightning_logs" / "mnist_lenet5" / "version_0")["train/loss"]
    ]
    assert len(steps) >= 8 and steps == sorted(set(steps))  # at least four per epoch, each step once
