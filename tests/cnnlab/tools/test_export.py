import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main
from cnnlab.export_formats import deployable
from cnnlab.models import read_checkpoint
from tests.cli_args import QUIET, inside, on_data, on_folder, recipe

pytestmark = pytest.mark.slow  # trains for real or starts processes


def tiny_fit(root: Path, data_root: Path, name: str = "mnist_lenet5") -> Path:
    """Train recipe ``name`` for one epoch on the fixture data in ``root``; the best checkpoint's path."""
    with inside(root):
        data = on_data(data_root, batch_size=32, workers=0)
        main(["fit", *recipe(name), *data, "--trainer.max_epochs", "2", *QUIET])
    return next((root / "lightning_logs" / name / "version_0" / "checkpoints").glob("epoch*.ckpt"))


@pytest.fixture(scope="module")
def mnist_ckpt(tmp_path_factory, mnist_root):
    return tiny_fit(tmp_path_factory.mktemp("fit"), mnist_root)


def test_checkpoint_records_the_data_normalisation(mnist_ckpt):
    hparams = torch.load(mnist_ckpt, weights_only=True)["hyper_parameters"]
    assert tuple(hparams["mean"]) == (0.1307,) and tuple(hparams["std"]) == (0.3081,)


def test_exported_model_normalises_like_the_data_module(mnist_ckpt, mnist_root):
    from cnnlab.datamodules import MNISTDataModule
    from cnnlab.models import ImageClassifier

    model, info = deployable(read_checkpoint(mnist_ckpt))
    dm = MNISTDataModule(str(mnist_root), download=False)
    images, _ = dm.sample_images("test", 16)
    classifier = ImageClassifier.load_from_checkpoint(mnist_ckpt, weights_only=True).eval()
    with torch.no_grad():
        expected = classifier(dm.normalize((images * 255).round().to(torch.uint8)))
        torch.testing.assert_close(model(images), expected, atol=1e-4, rtol=1e-4)
    assert info["input_size"] == [1, 28, 28] and info["class_names"] == [str(d) for d in range(10)]


def test_exported_model_averages_the_same_tta_views_as_the_run(mnist_ckpt, tmp_path):
    from cnnlab.models import ImageClassifier

    ckpt = torch.load(mnist_ckpt, weights_only=True)
    ckpt["hyper_parameters"].update(tta=True, tta_shift=1)  # a run with airbench94's six views
    path = tmp_path / "tta.ckpt"
    torch.save(ckpt, path)
    model, _ = deployable(read_checkpoint(path))
    classifier = ImageClassifier.load_from_checkpoint(path).eval()
    images = torch.rand(4, 1, 28, 28)
    mean, std = classifier.hparams.mean[0], classifier.hparams.std[0]
    with torch.no_grad():
        torch.testing.assert_close(model(images), classifier((images - mean) / std), atol=1e-4, rtol=1e-4)
        plain, _ = deployable(read_checkpoint(mnist_ckpt))
        assert not torch.allclose(model(images), plain(images), atol=1e-4)
    output = tmp_path / "model.pt"
    main(["export", "--ckpt_path", str(path), "--format", "torchscript", "--output", str(output)])
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(output)(images), model(images), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fmt", ["torchscript", "exported_program"])
def test_export_formats_match_pytorch_at_any_batch_size(fmt, mnist_ckpt, tmp_path):
    output = tmp_path / ("model.pt" if fmt == "torchscript" else "model.pt2")
    main(["export", "--ckpt_path", str(mnist_ckpt), "--format", fmt, "--output", str(output)])
    model, _ = deployable(read_checkpoint(mnist_ckpt))
    loaded = torch.jit.load(output) if fmt == "torchscript" else torch.export.load(output).module()
    for batch in (1, 64):
        images = torch.rand(batch, 1, 28, 28)
        with torch.no_grad():
            torch.testing.assert_close(loaded(images), model(images), atol=1e-5, rtol=1e-5)
    sidecar = json.loads(Path(f"{output}.json").read_text())
    assert sidecar["format"] == fmt and sidecar["mean"] == [0.1307] and sidecar["std"] == [0.3081]
    assert sidecar["input_size"] == [1, 28, 28] and len(sidecar["class_names"]) == 10


def test_onnx_export_matches_pytorch_in_onnxruntime(mnist_ckpt, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    output = tmp_path / "model.onnx"
    main(["export", "--ckpt_path", str(mnist_ckpt), "--format", "onnx", "--output", str(output)])
    printed = capsys.readouterr().out
    # the check ran on the run's own test images (71 of the fixture's 100), both batch sizes
    assert "onnx check (71 test images, batches of 64 and 7)" in printed
    assert "top-1 identical on 71/71 images" in printed
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    model, _ = deployable(read_checkpoint(mnist_ckpt))
    for batch in (1, 5, 64):
        images = torch.rand(batch, 1, 28, 28)
        got = session.run(None, {"images": images.numpy()})[0]
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(got), model(images), atol=1e-4, rtol=1e-4)
    assert json.loads(Path(f"{output}.json").read_text())["format"] == "onnx"


def test_unknown_format_is_one_clear_line(mnist_ckpt, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--ckpt_path", str(mnist_ckpt), "--format", "tflite", "--output", f"{tmp_path}/x"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "unknown export format 'tflite'" in err and "onnx, torchscript, exported_program" in err
    assert not list(tmp_path.iterdir())


def test_checkpoint_without_normalisation_needs_mean_and_std(mnist_ckpt, tmp_path, capsys):
    ckpt = torch.load(mnist_ckpt, weights_only=True)
    del ckpt["hyper_parameters"]["mean"], ckpt["hyper_parameters"]["std"]
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    args = ["export", "--ckpt_path", str(old), "--format", "torchscript", "--output", str(tmp_path / "m.pt")]
    with pytest.raises(SystemExit):
        main(args)
    assert "pass the training data's --mean and --std" in capsys.readouterr().err
    main([*args, "--mean", "0.5", "--std", "0.25"])
    assert json.loads((tmp_path / "m.pt.json").read_text())["mean"] == [0.5]


def test_int8_export_calibrates_on_the_runs_data_and_reports_accuracy(mnist_ckpt, tmp_path, capsys):
    output = tmp_path / "model.int8.pt"
    main(["export", "--ckpt_path", str(mnist_ckpt), "--format", "int8", "--output", str(output)])
    printed = capsys.readouterr().out
    assert "int8 check (100 test images): accuracy fp32" in printed
    from cnnlab.models.quantization import load_int8

    assert load_int8(output)(torch.rand(5, 1, 28, 28)).shape == (5, 10)
    assert json.loads(Path(f"{output}.json").read_text())["format"] == "int8"


def test_int8_export_without_data_is_a_clear_error(mnist_ckpt, tmp_path, capsys):
    ckpt = tmp_path / "moved.ckpt"  # no run folder, so no config.yaml naming the data
    ckpt.write_bytes(mnist_ckpt.read_bytes())
    with pytest.raises(SystemExit):
        main(["export", "--ckpt_path", str(ckpt), "--format", "int8", "--output", str(tmp_path / "m.pt")])
    assert "int8 calibration needs the training images" in capsys.readouterr().err


def test_compress_reports_every_variant_side_by_side(mnist_ckpt, tmp_path, capsys):
    # a pruned copy as torch.nn.utils.prune leaves it: weight_orig and weight_mask, half the weights masked
    ckpt = torch.load(mnist_ckpt, weights_only=True)
    state = ckpt["state_dict"]
    key = next(k for k in state if k.endswith(".weight") and state[k].ndim == 2)
    weight = state.pop(key)
    state[f"{key}_orig"], state[f"{key}_mask"] = weight, (torch.rand_like(weight) > 0.5).float()
    pruned = tmp_path / "pruned.ckpt"
    torch.save(ckpt, pruned)
    report = tmp_path / "report.md"
    args = ["--ckpt_path", str(mnist_ckpt), "--pruned", str(pruned), "--output", str(report)]
    main(["compress", *args, "--limit", "50", "--rounds", "1", "--calibration_images", "64"])
    table = report.read_text()
    assert table in capsys.readouterr().out  # printed as written
    cells = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| ")]
    rows = {row[0].strip(): row[1:] for row in cells}
    assert set(rows) >= {"fp32", "int8", "pruned (lenet5)"}
    if importlib.util.find_spec("onnxruntime"):
        assert "ONNX (onnxruntime)" in rows
    params, nonzero = (int(rows["pruned (lenet5)"][i].replace(",", "")) for i in (1, 2))
    assert params == int(rows["fp32"][1].replace(",", "")) and nonzero < params - weight.numel() // 4
    assert float(rows["int8"][3]) < float(rows["fp32"][3]) / 2  # the int8 file is much smaller
    assert "on 50 test images" in table


def test_image_folder_runs_record_their_estimated_normalisation(folder_root, in_tmp, monkeypatch):
    # the data module estimates mean and std in setup, after the CLI linked its (empty) values
    monkeypatch.setattr(sys, "argv", ["cnnlab"])
    data = on_folder(folder_root, workers=0)
    main(["fit", *data, "--model.arch", "simplecnn", "--trainer.max_epochs", "1", *QUIET])
    ckpt_path = in_tmp / "lightning_logs/imagefolder_simplecnn/version_0/checkpoints/last.ckpt"
    ckpt = torch.load(ckpt_path, weights_only=True)
    estimated = ckpt["ImageFolderDataModule"]
    assert list(ckpt["hyper_parameters"]["mean"]) == estimated["mean"] and len(estimated["mean"]) == 3
    _, info = deployable(read_checkpoint(ckpt_path))
    assert info["std"] == estimated["std"] and info["input_size"][0] == 3


def test_compress_without_the_onnx_extra_leaves_out_the_onnx_row(mnist_ckpt, tmp_path, capsys, monkeypatch):
    for module in ("onnxruntime", "onnxscript", "onnx"):  # as if `pip install cnnlab` without [onnx]
        monkeypatch.setitem(sys.modules, module, None)
    report = tmp_path / "report.md"
    args = ["--ckpt_path", str(mnist_ckpt), "--output", str(report), "--limit", "20", "--rounds", "1"]
    main(["compress", *args, "--calibration_images", "32"])
    out = capsys.readouterr().out
    notices = [line for line in out.splitlines() if line.startswith("compress: notice: no ONNX row")]
    assert len(notices) == 1 and "pip install" in notices[0]
    assert "ONNX" not in report.read_text() and "| int8 |" in report.read_text()


def test_quantization_aware_fine_tuning_exports_int8_with_its_own_ranges_and_joins_the_report(
    mnist_ckpt, mnist_root, tmp_path, capsys
):
    with inside(tmp_path):
        data = on_data(mnist_root, batch_size=32, workers=0)
        main(["fit", *recipe("mnist_lenet5_qat"), *data, "--model.init_from", str(mnist_ckpt),
              "--trainer.max_epochs", "1", *QUIET])  # fmt: skip
    qat = tmp_path / "lightning_logs" / "mnist_lenet5_qat" / "version_0" / "checkpoints" / "last.ckpt"
    state = torch.load(qat, weights_only=True)["state_dict"]  # fake quantization is tensors only
    assert any("activation_post_process" in key for key in state)
    capsys.readouterr()

    output = tmp_path / "qat.int8.pt"
    main(["export", "--ckpt_path", str(qat), "--format", "int8", "--output", str(output)])
    assert "int8 check (100 test images)" in capsys.readouterr().out
    from cnnlab.models.quantization import load_int8

    assert load_int8(output)(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    sidecar = json.loads(Path(f"{output}.json").read_text())
    assert "the ranges of its quantization-aware training" in sidecar["quantization"]

    report = tmp_path / "report.md"
    main(["compress", "--ckpt_path", str(mnist_ckpt), "--qat", str(qat), "--output", str(report),
          "--limit", "50", "--rounds", "1", "--calibration_images", "64"])  # fmt: skip
    variants = {line.split("|")[1].strip() for line in report.read_text().splitlines() if "| " in line}
    assert {"fp32", "int8", "int8-qat (lenet5)"} <= variants
