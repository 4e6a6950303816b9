"""Bad input: one line on stderr starting with ``cnnlab: error:``, no traceback, a non-zero exit."""

import shutil
import sys
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main
from cnnlab.models import ImageClassifier
from tests.checkpoints import make_checkpoint
from tests.cli_args import QUIET, on_data, on_folder, recipe
from tests.fakedata import make_image_folder

LENET = recipe("mnist_lenet5")


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])
    monkeypatch.delenv("CNNLAB_DEBUG", raising=False)


def one_line_error(args, capsys) -> str:
    with pytest.raises(SystemExit) as done:
        main(args)
    err = capsys.readouterr().err.strip()
    assert done.value.code not in (0, None)
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith("cnnlab: error: "), err
    return err.removeprefix("cnnlab: error: ")


def mnist(mnist_root) -> list[str]:
    return [*on_data(mnist_root), *QUIET]


def lenet_checkpoint(path: Path) -> Path:
    """A checkpoint of an untrained MNIST LeNet-5 (1 channel, 10 classes), as cnnlab writes them."""
    model = ImageClassifier(arch="lenet5", num_classes=10, in_channels=1, image_size=28)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path


def test_unknown_config_key_on_the_command_line_names_the_close_match(mnist_root, in_tmp, capsys):
    msg = one_line_error(["fit", *LENET, *mnist(mnist_root), "--trainer.max_epocs", "3"], capsys)
    assert "'trainer.max_epocs'" in msg and "did you mean trainer.max_epochs" in msg


def test_unknown_config_key_in_a_config_file_names_the_close_match(mnist_root, in_tmp, capsys):
    (in_tmp / "bad.yaml").write_text("trainer:\n  max_epocs: 2\n")
    msg = one_line_error(["fit", *LENET, "--config", "bad.yaml", *mnist(mnist_root)], capsys)
    assert "'trainer.max_epocs'" in msg and "did you mean trainer.max_epochs" in msg


def test_unknown_data_module_lists_the_close_match(mnist_root, in_tmp, capsys):
    msg = one_line_error(["fit", *LENET, "--data", "MNISTDataModul", *mnist(mnist_root)], capsys)
    assert msg.startswith("unknown data module 'MNISTDataModul'. Did you mean MNISTDataModule")
    assert "ImageFolderDataModule" in msg


def test_bad_option_value_names_the_option_and_the_type(mnist_root, in_tmp, capsys):
    msg = one_line_error(["fit", *LENET, "--model.label_smoothing", "abc", *mnist(mnist_root)], capsys)
    assert msg == "bad value 'abc' for --model.label_smoothing (expected float)"
    msg = one_line_error(["fit", *LENET, "--data.batch_size", "big", *mnist(mnist_root)], capsys)
    assert msg == "bad value 'big' for --data.batch_size (expected int)"


def test_mapping_written_without_spaces_gets_a_yaml_hint(mnist_root, in_tmp, capsys):
    msg = one_line_error(["fit", *LENET, "--model.arch_kwargs", "{hidden:128}", *mnist(mnist_root)], capsys)
    assert msg.startswith("bad value '{hidden:128}' for --model.arch_kwargs (expected dict)")
    assert "--model.arch_kwargs.NAME VALUE" in msg


def test_debug_shows_the_traceback(mnist_root, in_tmp, capsys):
    with pytest.raises(Exception, match="MNISTDataModul"):
        main(["fit", *LENET, "--data", "MNISTDataModul", *mnist(mnist_root), "--debug"])


@pytest.mark.parametrize("content", ["missing", "empty"])
def test_image_folder_missing_or_empty(content, in_tmp, capsys):
    if content == "empty":
        (in_tmp / "images" / "train").mkdir(parents=True)
    msg = one_line_error(["fit", *on_folder("images"), "--model.arch", "simplecnn", *QUIET], capsys)
    assert msg.startswith("no class folders in ") and "images/train" in msg


def test_image_folder_whose_test_classes_differ_from_training(folder_root, in_tmp, capsys):
    data = in_tmp / "images"
    shutil.copytree(folder_root, data)
    (data / "test" / "square").rename(data / "test" / "oval")
    args = ["fit", *on_folder(data, workers=0), "--model.arch", "simplecnn"]
    msg = one_line_error([*args, "--trainer.max_epochs", "1", *QUIET], capsys)
    assert "differ from train/" in msg and "'square'" in msg and "'oval'" in msg


def test_checkpoint_whose_channels_disagree_with_the_data(cifar_root, in_tmp, capsys):
    ckpt = lenet_checkpoint(in_tmp / "lenet.ckpt")
    args = ["test", *LENET, "--data", "CIFAR10DataModule", *on_data(cifar_root)]
    msg = one_line_error([*args, "--ckpt_path", str(ckpt), *QUIET], capsys)
    assert msg.startswith(f"checkpoint {ckpt} has in_channels=1 but the data has in_channels=3")


def test_checkpoint_whose_classes_disagree_with_the_data(in_tmp, capsys):
    ckpt = lenet_checkpoint(in_tmp / "lenet.ckpt")
    data = make_image_folder(in_tmp / "shapes", size=28)  # 3 classes
    args = ["test", *LENET, *on_folder(data)]
    msg = one_line_error([*args, "--data.channels", "1", "--ckpt_path", str(ckpt), *QUIET], capsys)
    assert msg.startswith(f"checkpoint {ckpt} has num_classes=10 but the data has num_classes=3")


@pytest.mark.parametrize("kind", ["truncated", "foreign"])
def test_truncated_or_foreign_checkpoint(kind, mnist_root, in_tmp, capsys):
    ckpt = lenet_checkpoint(in_tmp / "lenet.ckpt")
    if kind == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:5000])
    else:
        ckpt.write_text("epoch,acc\n1,0.9\n")
    msg = one_line_error(["test", *LENET, *mnist(mnist_root), "--ckpt_path", str(ckpt)], capsys)
    assert msg.startswith(f"{ckpt} is truncated or not a PyTorch checkpoint")


def test_output_folder_that_is_not_writable(mnist_root, in_tmp, capsys):
    (in_tmp / "a_file").write_text("")  # a folder cannot be made under a file, even by root
    out = ["--trainer.logger.init_args.save_dir", "a_file/logs", "--trainer.max_epochs", "1"]
    msg = one_line_error(["fit", *LENET, *mnist(mnist_root), *out], capsys)
    assert msg.startswith("output folder a_file/logs is not writable")
    assert not list(in_tmp.glob("**/*.ckpt"))


def test_checkpoint_whose_class_names_differ_from_the_data_names_both(in_tmp, capsys):
    ckpt = make_checkpoint(in_tmp / "shapes.ckpt", "simplecnn", in_channels=3, image_size=24, num_classes=3)
    saved = torch.load(ckpt, weights_only=True)
    saved["hyper_parameters"]["class_names"] = ["circle", "square", "triangle"]
    torch.save(saved, ckpt)
    renamed = make_image_folder(in_tmp / "renamed", classes=("cat", "dog", "fox"))
    args = [
        "test",
        *on_folder(renamed, workers=0),
        "--model.arch",
        "simplecnn",
        "--ckpt_path",
        str(ckpt),
        *QUIET,
    ]
    msg = one_line_error(args, capsys)
    assert "['circle', 'square', 'triangle'] but the data has ['cat', 'dog', 'fox']" in msg
    assert "--relabel_classes true" in msg
    main([*args, "--relabel_classes", "true"])  # the user says they are the same classes: tested
    assert "Test report (18 images)" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["test_without_checkpoint", "zero_epochs"])
def test_testing_untrained_weights_says_so(case, mnist_root, in_tmp, capsys):
    data = on_data(mnist_root, workers=0)
    args = ["test", *LENET, *data] if case == "test_without_checkpoint" else ["fit", *LENET, *data,
            "--trainer.max_epochs", "0"]  # fmt: skip
    main([*args, *QUIET])
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("cnnlab: warning:")]
    assert len(warnings) == 1 and "a model that was never trained (random weights)" in warnings[0]
