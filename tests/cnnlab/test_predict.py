import csv
import io
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli import main
from cnnlab.models import ImageClassifier
from tests.cli_args import QUIET, on_data, on_folder, recipe

pytestmark = pytest.mark.slow  # trains for real or starts processes

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])


def train_briefly(name: str, root) -> Path:
    main(
        [
            "fit",
            *recipe(name),
            *on_data(root, workers=0),
            "--trainer.max_epochs",
            "1",
            "--trainer.limit_train_batches",
            "2",
            "--trainer.limit_val_batches",
            "1",
            "--test_after_fit",
            "false",
            *QUIET,
        ]
    )
    return next(Path("lightning_logs").glob("*/version_0/checkpoints/last.ckpt"))


def user_folder(folder: Path) -> Path:
    """Images of other sizes and modes, plus a corrupt image and a text file."""
    rng = np.random.default_rng(0)
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8), "L").save(folder / "gray.png")
    Image.fromarray(rng.integers(0, 256, (400, 600, 4), dtype=np.uint8), "RGBA").save(folder / "sub/big.png")
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, "PNG")
    (folder / "corrupt.png").write_bytes(buffer.getvalue()[:200])  # cut short: undecodable
    (folder / "notes.txt").write_text("not an image\n")
    return folder


def expected_probs(model: ImageClassifier, path: Path, mode: str, size: int, mean, std) -> torch.Tensor:
    """The model's own softmax on the image, prepared by hand with PIL (convert, resize, normalise)."""
    with Image.open(path) as img:
        img = img.convert(mode).resize((size, size), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).reshape(size, size, len(mode))
    x = x.permute(2, 0, 1)
    x = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    with torch.no_grad():
        return model.eval()(x[None]).softmax(dim=1)[0]


def read_csv(path: Path) -> dict[str, dict]:
    with path.open() as f:
        return {Path(row["path"]).name: row for row in csv.DictReader(f)}


def test_predict_writes_checkpoint_class_names_and_the_models_softmax(cifar_root, in_tmp, capsys):
    ckpt_path = train_briefly("cifar10_simplecnn", cifar_root)
    # Class names that only the checkpoint holds: the CSV must take them from there.
    ckpt = torch.load(ckpt_path, weights_only=True)
    names = [f"kind{i}" for i in range(10)]
    ckpt["hyper_parameters"]["class_names"] = names
    renamed = in_tmp / "renamed.ckpt"
    torch.save(ckpt, renamed)
    folder = user_folder(in_tmp / "mine")
    capsys.readouterr()
    out_csv = in_tmp / "out" / "preds.csv"
    main(
        [
            "predict",
            *recipe("cifar10_simplecnn"),
            *on_data(cifar_root, workers=0),
            "--ckpt_path",
            str(renamed),
            "--data.predict_dir",
            str(folder),
            "--prediction.output",
            str(out_csv),
            *QUIET,
        ]
    )
    captured = capsys.readouterr()
    assert "corrupt.png" in captured.err and "notes.txt" in captured.err
    assert f"2 predictions written to {out_csv}" in captured.out
    rows = read_csv(out_csv)
    assert sorted(rows) == ["big.png", "gray.png"]  # grayscale and RGBA images work for an RGB model
    model = ImageClassifier.load_from_checkpoint(ckpt_path, weights_only=True)
    for name, path in [("gray.png", folder / "gray.png"), ("big.png", folder / "sub" / "big.png")]:
        probs = expected_probs(model, path, "RGB", 32, CIFAR_MEAN, CIFAR_STD)
        top = probs.topk(5)
        row = rows[name]
        assert row["predicted"] == names[top.indices[0]]
        assert float(row["probability"]) == pytest.approx(top.values[0].item(), abs=1e-5)
        pairs = [pair.split(":") for pair in row["top5"].split(";")]
        assert [n for n, _ in pairs] == [names[i] for i in top.indices]
        assert [float(p) for _, p in pairs] == pytest.approx(top.values.tolist(), abs=1e-5)


def test_predict_converts_rgb_for_a_grayscale_model_and_respects_tta(mnist_root, in_tmp, capsys):
    ckpt_path = train_briefly("mnist_lenet5", mnist_root)
    ckpt = torch.load(ckpt_path, weights_only=True)
    ckpt["hyper_parameters"]["tta"] = True  # a model trained with tta: prediction averages the mirror image
    tta_ckpt = in_tmp / "tta.ckpt"
    torch.save(ckpt, tta_ckpt)
    image = in_tmp / "digit.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (50, 70, 3), dtype=np.uint8)).save(image)
    main(
        [
            "predict",
            *recipe("mnist_lenet5"),
            *on_data(mnist_root, workers=0),
            "--ckpt_path",
            str(tta_ckpt),
            "--data.predict_dir",
            f"[{image}]",
            *QUIET,
        ]
    )
    out = capsys.readouterr().out
    csv_path = Path(out.strip().splitlines()[-1].split(" written to ")[1])
    assert csv_path.parent.parent.name == "mnist_lenet5"  # in the prediction run's folder
    row = read_csv(csv_path)["digit.jpg"]
    model = ImageClassifier.load_from_checkpoint(ckpt_path, weights_only=True)
    plain = expected_probs(model, image, "L", 28, (0.1307,), (0.3081,))
    model.hparams.tta = True
    with_tta = expected_probs(model, image, "L", 28, (0.1307,), (0.3081,))
    assert not torch.allclose(plain, with_tta)
    assert float(row["probability"]) == pytest.approx(with_tta.max().item(), abs=1e-5)
    assert row["predicted"] == str(with_tta.argmax().item())  # MNIST's class names: the digits


def test_predict_without_files_is_one_line(mnist_root, in_tmp, capsys):
    ckpt_path = train_briefly("mnist_lenet5", mnist_root)
    capsys.readouterr()
    data = on_data(mnist_root, workers=0)
    predict = ["predict", *recipe("mnist_lenet5"), *data, "--ckpt_path", str(ckpt_path)]
    with pytest.raises(SystemExit) as exit_info:
        main([*predict, *QUIET])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("cnnlab: error: nothing to predict; pass --data.predict_dir")
    with pytest.raises(SystemExit):
        main([*predict, "--data.predict_dir", "missing/", *QUIET])
    assert "cnnlab: error: missing does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["mnist_lenet5", "cifar10_simplecnn", "image_folder"])
def test_predict_needs_only_the_checkpoint(kind, mnist_root, cifar_root, folder_root, in_tmp, capsys):
    # trained where the data is ...
    if kind == "image_folder":
        data = in_tmp / "photos"
        shutil.copytree(folder_root, data)
        main(["fit", *on_folder(data, workers=0), "--model.arch", "simplecnn", "--trainer.max_epochs", "1",
              "--test_after_fit", "false", *QUIET])  # fmt: skip
        ckpt_path = next(Path("lightning_logs").glob("*/version_0/checkpoints/last.ckpt"))
        shutil.rmtree(data)
    else:
        ckpt_path = train_briefly(kind, mnist_root if kind.startswith("mnist") else cifar_root)
    ckpt_path = ckpt_path.resolve()
    hp = torch.load(ckpt_path, weights_only=True)["hyper_parameters"]
    # ... predicted from an empty folder, with no recipe and no data set on disk
    empty = in_tmp / "elsewhere"
    empty.mkdir()
    images = user_folder(in_tmp / "mine")
    os.chdir(empty)
    capsys.readouterr()
    main(["predict", "--ckpt_path", str(ckpt_path), "--data.predict_dir", str(images), *QUIET])
    rows = read_csv(next(empty.glob("lightning_logs/*/version_0/predictions.csv")))
    assert sorted(rows) == ["big.png", "gray.png"] and sorted(p.name for p in empty.iterdir()) == [
        "lightning_logs"
    ]
    model = ImageClassifier.load_from_checkpoint(ckpt_path)
    mode = "L" if hp["in_channels"] == 1 else "RGB"
    probs = expected_probs(model, images / "gray.png", mode, hp["image_size"], hp["mean"], hp["std"])
    assert float(rows["gray.png"]["probability"]) == pytest.approx(probs.max().item(), abs=1e-5)
    assert rows["gray.png"]["predicted"] == hp["class_names"][probs.argmax().item()]
