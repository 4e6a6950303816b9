"""Bad input: one line on stderr starting with ``cnnlab: error:``, no traceback, a non-zero exit."""

import errno
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
    assert msg.startswith("cannot write into a_file/logs (Not a directory)")
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


@pytest.mark.slow  # a fit and a test of LeNet-5 each
@pytest.mark.parametrize("case", ["test_without_checkpoint", "zero_epochs"])
def test_testing_untrained_weights_says_so(case, mnist_root, in_tmp, capsys):
    data = on_data(mnist_root, workers=0)
    args = ["test", *LENET, *data] if case == "test_without_checkpoint" else ["fit", *LENET, *data,
            "--trainer.max_epochs", "0"]  # fmt: skip
    main([*args, *QUIET])
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("cnnlab: warning:")]
    assert len(warnings) == 1 and "a model that was never trained (random weights)" in warnings[0]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--data.val_fraction", "-0.1"], "--data.val_fraction must be from 0"),
        (["--data.val_fraction", "1.5"], "--data.val_fraction must be from 0"),
        (["--data.batch_size", "0"], "--data.batch_size must be 1 or more images, got 0"),
        (["--data.batch_size", "-1"], "--data.batch_size must be 1 or more images, got -1"),
        (["--optimizer.lr", "-1"], "Adam refuses its options (Invalid learning rate: -1.0)"),
        (["--trainer.gradient_clip_algorithm", "foo"], "`gradient_clip_algorithm` foo is invalid"),
        (["--data.batchsize", "1"], "unknown config key 'data.batchsize' (did you mean data.batch_size?)"),
        (
            ["--trainer.logger.init_args.save_dir", "/proc/version/logs"],
            "cannot write into /proc/version/logs",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("--") else None,
)
def test_bad_options_are_one_line_naming_the_option(options, message, mnist_root, in_tmp, capsys):
    msg = one_line_error(["fit", *LENET, *on_data(mnist_root, workers=0), *options, *QUIET], capsys)
    assert message in msg
    if "refuses" not in message:  # refused before the run started: no run folder left behind
        assert not list(in_tmp.glob("lightning_logs/*/version_*"))


def test_image_folder_options_and_cache_folder_are_one_line(folder_root, in_tmp, capsys):
    data = on_folder(folder_root, workers=0)
    msg = one_line_error(["fit", *data, "--data.image_size", "-5", *QUIET], capsys)
    assert "--data.image_size must be 1 or more pixels, got -5" in msg
    (in_tmp / "a_file").write_text("")
    msg = one_line_error(["fit", *data, "--data.cache_dir", str(in_tmp / "a_file" / "cache"), *QUIET], capsys)
    assert "cannot make the image cache folder" in msg and "--data.cache_dir" in msg


def test_a_recipe_of_a_data_set_pointed_at_an_image_folder_suggests_the_image_folder_module(
    folder_root, in_tmp, capsys
):
    msg = one_line_error(
        ["fit", *recipe("cifar10_simplecnn"), "--data.data_dir", str(folder_root), *QUIET], capsys
    )
    assert f"{folder_root} holds an image folder" in msg and "--data ImageFolderDataModule" in msg


def test_a_yaml_value_of_the_wrong_type_names_the_key(in_tmp, capsys):
    (in_tmp / "bad.yaml").write_text("data:\n  init_args:\n    batch_size: lots\n")
    msg = one_line_error(["fit", *LENET, "--config", str(in_tmp / "bad.yaml"), *QUIET], capsys)
    assert msg == "bad value lots for --data.batch_size (expected int)"


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_so_in_one_line(
    mnist_root, in_tmp, capsys, monkeypatch
):
    args = [
        "fit",
        *LENET,
        *on_data(mnist_root, batch_size=60, workers=0),
        "--trainer.max_epochs",
        "3",
        *QUIET,
    ]
    real_save, saves = torch.save, []

    def save(obj, f, *a, **kw):
        saves.append(1)
        if len(saves) > 2:  # epoch 0 wrote its two checkpoints; then the disk is full
            f.write(b"PK\x03\x04 half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", save)
    msg = one_line_error(args, capsys)
    monkeypatch.setattr(torch, "save", real_save)
    assert "no space left on the device" in msg and "checkpoints written before are whole" in msg
    folder = in_tmp / "lightning_logs" / "mnist_lenet5" / "version_0" / "checkpoints"
    assert torch.load(folder / "last.ckpt", weights_only=True)["epoch"] == 0
    assert not list(folder.glob(".*.tmp"))
