import io
import sys

import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from torch import nn

from cnnlab.callbacks.pictures import TensorBoardPictures, layer_pictures
from cnnlab.lightning_cli import CNNLabCLI
from cnnlab.models import ImageClassifier, list_models
from tests.cli_args import QUIET, inside, on_data, recipe


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])


def fit(data_dir, *extra: str) -> CNNLabCLI:
    args = ["fit", *recipe("mnist_lenet5"), *on_data(data_dir, batch_size=50), "--trainer.max_epochs", "2"]
    return CNNLabCLI(args=[*args, *QUIET, *extra])


@pytest.fixture(scope="module")
def lenet_run(mnist_root, tmp_path_factory):
    """One short LeNet-5 fit (with its post-fit test) on the tiny MNIST; its run folder and the CLI."""
    root = tmp_path_factory.mktemp("pictures")
    with inside(root):
        cli = fit(mnist_root)
    events = EventAccumulator(
        str(root / "lightning_logs" / "mnist_lenet5" / "version_0"), size_guidance={"images": 0}
    )
    events.Reload()
    return events, cli


def decoded(events: EventAccumulator, tag: str) -> Image.Image:
    return Image.open(io.BytesIO(events.Images(tag)[-1].encoded_image_string))


@pytest.mark.slow
def test_every_picture_is_an_image_in_the_event_file(lenet_run):
    events, _ = lenet_run
    tags = events.Tags()["images"]
    expected = [
        "test/confusion_matrix",
        "test/per_class_accuracy",
        "filters/features.0",
        "feature_maps/input",
        "feature_maps/0_features.0",
        "feature_maps/1_features.3",
    ]
    assert set(expected) <= set(tags)
    # Filters and feature maps every epoch (2), the test pictures once.
    assert len(events.Images("filters/features.0")) == 2
    assert len(events.Images("test/confusion_matrix")) == 1
    matrix = decoded(events, "test/confusion_matrix")
    assert matrix.width >= 600 and matrix.height >= 600  # readable, not a thumbnail
    # LeNet-5's 6 first-layer filters, each enlarged from 5x5 to at least 96 pixels.
    assert decoded(events, "filters/features.0").width >= 6 * 96


@pytest.mark.slow
def test_histograms_of_every_weight_and_gradient(lenet_run):
    events, cli = lenet_run
    names = [n.removeprefix("model.") for n, _ in cli.model.named_parameters()]
    histograms = set(events.Tags()["histograms"])
    assert {f"weights/{n}" for n in names} <= histograms
    assert {f"gradients/{n}" for n in names} <= histograms


@pytest.mark.slow  # trains LeNet-5 for two epochs
def test_hparams_view_holds_hyperparameters_and_results(lenet_run):
    events, cli = lenet_run
    content = events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    metrics = {m.name.tag for m in experiment.metric_infos}
    assert {"hp/val_acc_best", "hp/test_acc", "hp/test_loss", "hp/test_f1"} <= metrics
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = session.session_start_info.hparams
    assert hparams["arch"].string_value == "lenet5"
    assert hparams["optimizer/init_args/lr"].number_value == pytest.approx(1e-3)
    scalars = {tag: events.Scalars(tag)[-1].value for tag in ("hp/test_acc", "test/acc", "hp/val_acc_best")}
    assert scalars["hp/test_acc"] == pytest.approx(scalars["test/acc"])
    assert scalars["hp/val_acc_best"] == pytest.approx(
        float(cli.trainer.checkpoint_callback.best_model_score)
    )


def test_most_confidently_wrong_images_are_kept_across_batches():
    pictures = TensorBoardPictures(misclassified=3)
    images = torch.arange(8.0).view(8, 1, 1, 1)  # image i holds the value i
    labels = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
    predicted = torch.tensor([1, 1, 1, 0, 1, 0, 0, 0])  # wrong: 0, 2, 3, 4, 5, 7
    confidence = torch.tensor([0.6, 0.99, 0.9, 0.5, 0.7, 0.95, 0.8, 0.4])
    for part in (slice(0, 4), slice(4, 8)):
        pictures._keep_most_confident_wrong(images[part], labels[part], predicted[part], confidence[part])
    kept = pictures._wrong
    assert kept["images"].flatten().tolist() == [5.0, 2.0, 4.0]  # 0.95, 0.9, 0.7; right answers never
    assert kept["labels"].tolist() == [1, 0, 0] and kept["predicted"].tolist() == [0, 1, 1]


@pytest.mark.parametrize("arch", [*list_models(), "torchvision:resnet18"])
def test_every_architecture_gets_filters_and_feature_maps(arch):
    model = ImageClassifier(arch, num_classes=10, in_channels=3, image_size=32)
    pictures = layer_pictures(model, torch.randn(1, 3, 32, 32), filters=True, feature_maps=3)
    assert sum(tag.startswith("filters/") for tag in pictures) == 1
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    assert sum(tag.startswith("feature_maps/") for tag in pictures) == min(3, convs)
    for picture in pictures.values():
        assert picture.ndim == 3 and picture.shape[0] == 3 and 0 <= picture.min() <= picture.max() <= 1
    assert model.training  # the model is left as it was found


def test_a_model_without_convolutions_gets_no_layer_pictures():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    assert layer_pictures(mlp, torch.randn(1, 3, 2, 2)) == {}


@pytest.mark.slow  # trains LeNet-5 for two epochs
def test_without_a_logger_the_pictures_are_skipped(mnist_root, in_tmp):
    cli = fit(mnist_root, "--trainer.logger", "false", "--trainer.max_epochs", "1")
    assert any(isinstance(c, TensorBoardPictures) for c in cli.trainer.callbacks)
    assert "test/acc" in cli.trainer.callback_metrics
    assert not list(in_tmp.rglob("events.out.tfevents.*"))


def test_a_picture_that_cannot_be_drawn_is_skipped_with_a_warning(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger

    class Trainer:  # what the histograms read of a trainer
        is_global_zero, current_epoch, global_step = True, 0, 0
        loggers = [TensorBoardLogger(str(tmp_path))]

    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.fill_(3e38)  # finite, but no histogram can bin it
    with pytest.warns(UserWarning, match=r"a picture \(on_train_epoch_end\) was skipped"):
        TensorBoardPictures().on_train_epoch_end(Trainer(), model)
