import csv
import sys

import lightning as L
import pytest
import torch

from cnnlab.callbacks.pruning import MagnitudePruning, prunable_layers
from cnnlab.datamodules import MNISTDataModule
from cnnlab.errors import ModelError, UserError
from cnnlab.lightning_cli import CNNLabCLI
from cnnlab.models import ImageClassifier
from tests.checkpoints import make_checkpoint
from tests.cli_args import QUIET, on_data, recipe
from tests.cnnlab.test_cli import scalars


@pytest.fixture
def pruned_run(mnist_root, tmp_path_factory, monkeypatch):
    """The pruning recipe (70% global, cubic over 3 epochs) from a briefly trained LeNet-5."""
    folder = tmp_path_factory.mktemp("prune")
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "argv", ["cnnlab"])
    data = [*on_data(mnist_root, batch_size=50), *QUIET]
    CNNLabCLI(
        args=["fit", *recipe("mnist_lenet5"), *data, "--trainer.max_epochs", "2", "--test_after_fit", "false"]
    )
    start = folder / "lightning_logs" / "mnist_lenet5" / "version_0" / "checkpoints" / "last.ckpt"
    cli = CNNLabCLI(args=["fit", *recipe("mnist_lenet5_prune"), *data, "--model.init_from", str(start)])
    return cli, folder / "lightning_logs" / "mnist_lenet5_prune" / "version_0"


def quiet_trainer(pruning: MagnitudePruning, max_epochs: int, folder) -> L.Trainer:
    """Trains with ``pruning`` and writes nothing: no logs, no checkpoints."""
    return L.Trainer(
        max_epochs=max_epochs,
        callbacks=[pruning],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=folder,
    )


def zeros_and_total(model: torch.nn.Module) -> tuple[int, int]:
    weights = [m.weight for _, m in prunable_layers(model)]
    return sum(int((w == 0).sum()) for w in weights), sum(w.numel() for w in weights)


@pytest.mark.slow
def test_cli_pruning_reaches_the_target_on_schedule_and_tests_a_checkpoint_at_the_target(pruned_run):
    cli, run = pruned_run
    pruning = next(c for c in cli.trainer.callbacks if isinstance(c, MagnitudePruning))
    # Cubic schedule over epochs 0..2: 0.7 * (1 - (2/3)^3), 0.7 * (1 - (1/3)^3), 0.7.
    logged = [value for _, value in scalars(run)["pruning/sparsity"]]
    assert logged == pytest.approx([0.4926, 0.6741, 0.7], abs=1e-3)
    # Only checkpoints at the final sparsity compete for "best": the tested one is from the last epoch.
    best = cli.trainer.checkpoint_callback.best_model_path
    assert "epoch002" in best
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == sorted(
        ["last.ckpt", best.split("/")[-1]]
    )
    # Permanent: plain parameters, and checkpoints that load into a plain model with their zeros.
    assert not any(name.endswith(("_orig", "_mask")) for name, _ in cli.model.named_parameters())
    assert not any(name.endswith(("_orig", "_mask")) for name, _ in cli.model.named_buffers())
    for ckpt in (best, run / "checkpoints" / "last.ckpt"):
        state = torch.load(ckpt, weights_only=True)["state_dict"]
        assert not any(k.endswith(("_orig", "_mask")) for k in state)
        plain = ImageClassifier.load_from_checkpoint(ckpt, weights_only=True)
        zeros, total = zeros_and_total(plain)
        assert zeros / total == pytest.approx(0.7, abs=0.01)
    # The report: per-layer counts of the tested checkpoint, global sparsity, accuracy before and after.
    rows = list(csv.DictReader(open(run / "pruning.csv")))
    plain = ImageClassifier.load_from_checkpoint(best, weights_only=True)
    for row, (name, module) in zip(rows, prunable_layers(plain), strict=False):
        assert row["layer"] == name
        assert int(row["zeros"]) == int((module.weight == 0).sum())
        assert int(row["weights"]) == module.weight.numel()
    assert len(rows) == len(prunable_layers(plain)) + 1 and rows[-1]["layer"] == "global"
    zeros, total = zeros_and_total(plain)
    assert (int(rows[-1]["zeros"]), int(rows[-1]["weights"])) == (zeros, total)
    after = float(cli.trainer.callback_metrics["test/acc"])
    assert pruning.accuracy_after == pytest.approx(after)
    assert 0 < pruning.accuracy_before <= 1
    report = (run / "pruning.md").read_text()
    assert f"before: {pruning.accuracy_before:.4f}; after: {after:.4f}" in report
    assert "| global |" in report and "70.00%" in report


def test_layer_wise_pruning_gives_every_layer_the_target(mnist_root, tmp_path):
    model = ImageClassifier("lenet5", in_channels=1, image_size=28)
    data = MNISTDataModule(data_dir=mnist_root, download=False, batch_size=50)
    pruning = MagnitudePruning(0.5, schedule="linear", global_pruning=False, measure_before=False)
    trainer = quiet_trainer(pruning, 2, tmp_path)
    trainer.fit(model, datamodule=data)
    for name, module in prunable_layers(model):
        zeros, total = int((module.weight == 0).sum()), module.weight.numel()
        assert zeros / total == pytest.approx(0.5, abs=1.5 / total + 1e-9), name
    assert pruning.sparsity_at(0) == pytest.approx(0.25) and pruning.sparsity_at(1) == 0.5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target_sparsity": 1.0}, "target_sparsity must be in [0, 1)"),
        ({"schedule": "exponential"}, "unknown pruning schedule 'exponential'"),
        ({"start_epoch": 3, "end_epoch": 1}, "must not be before start_epoch"),
    ],
)
def test_bad_settings_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        MagnitudePruning(**kwargs)


def test_init_from_a_different_architecture_is_a_user_error(mnist_root, tmp_path):
    ckpt = make_checkpoint(tmp_path / "cnn.ckpt", arch="mnist_cnn")
    model = ImageClassifier("lenet5", in_channels=1, image_size=28, init_from=str(ckpt))
    with pytest.raises(
        ModelError, match="holds a 'mnist_cnn' with 10 classes, which does not fit this 'lenet5'"
    ):
        model.setup("fit")
    model.setup("test")  # test and predict do not read it


def test_a_resumed_run_keeps_its_zeros_and_continues_the_schedule(mnist_root, tmp_path):
    data = MNISTDataModule(data_dir=mnist_root, download=False, batch_size=50)

    def fit(max_epochs: int, ckpt_path=None) -> tuple[ImageClassifier, L.Trainer]:
        model = ImageClassifier("lenet5", in_channels=1, image_size=28)
        pruning = MagnitudePruning(0.6, end_epoch=2, schedule="linear", measure_before=False)
        trainer = quiet_trainer(pruning, max_epochs, tmp_path)
        trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
        return model, trainer

    first, trainer = fit(1)
    trainer.save_checkpoint(tmp_path / "epoch0.ckpt", weights_only=False)
    zeros_before = {name: m.weight == 0 for name, m in prunable_layers(first)}
    zeros, total = zeros_and_total(first)
    assert zeros / total == pytest.approx(0.2, abs=0.01)
    resumed, _ = fit(3, ckpt_path=tmp_path / "epoch0.ckpt")
    zeros, total = zeros_and_total(resumed)
    assert zeros / total == pytest.approx(0.6, abs=0.01)
    for name, module in prunable_layers(resumed):
        assert bool((module.weight[zeros_before[name]] == 0).all()), name
