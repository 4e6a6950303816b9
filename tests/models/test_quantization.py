import io

import pytest
import torch

from cnnlab.export_formats import NormalizedModel
from cnnlab.models import ImageClassifier
from cnnlab.models.errors import ModelError
from cnnlab.models.quantization import (
    calibration_batches,
    convert_qat,
    is_quantization_aware,
    load_int8,
    prepare_qat,
    quantize_int8,
    save_int8,
)
from cnnlab.models.registry import get_model

# The int8 model may lose at most this much accuracy on the synthetic task (it loses none in practice).
MAX_ACCURACY_DROP = 0.02


def quadrant_task(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy 16x16 images in [0, 1] with a bright 6x6 square in one of four quadrants; the label is
    the quadrant."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (count,), generator=gen)
    images = torch.rand(count, 1, 16, 16, generator=gen) * 0.4
    for i, label in enumerate(labels.tolist()):
        top, left = 8 * (label // 2) + 1, 8 * (label % 2) + 1
        images[i, 0, top : top + 6, left : left + 6] += 0.6
    return images, labels


def accuracy(model, images, labels) -> float:
    with torch.no_grad():
        return (model(images).argmax(1) == labels).float().mean().item()


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = NormalizedModel(get_model("simplecnn", num_classes=4, in_channels=1, image_size=16), [0.3], [0.2])
    images, labels = quadrant_task(512, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        for x, y in zip(images.split(32), labels.split(32), strict=True):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    return model.eval(), images


@pytest.mark.slow
def test_int8_model_keeps_the_accuracy_of_the_float_model(trained):
    model, train_images = trained
    test_images, test_labels = quadrant_task(1000, seed=2)
    quantized = quantize_int8(model, calibration_batches(train_images[:256]))
    fp32, int8 = accuracy(model, test_images, test_labels), accuracy(quantized, test_images, test_labels)
    assert fp32 > 0.95  # the task is learnt, so the comparison means something
    assert int8 >= fp32 - MAX_ACCURACY_DROP
    assert quantized(test_images[:3]).shape == (3, 4)


def test_int8_runs_int8_kernels_and_saves_four_times_smaller(trained, tmp_path):
    model, train_images = trained
    quantized = quantize_int8(model, calibration_batches(train_images[:128]))
    assert "quantized::conv2d" in str(quantized.graph) or any(
        type(m).__module__.startswith("torch.ao.nn.quantized") for m in quantized.modules()
    )
    path = tmp_path / "model.int8.pt"
    save_int8(quantized, train_images[:2], path)
    fp32 = io.BytesIO()
    torch.save(model.state_dict(), fp32)
    assert path.stat().st_size < fp32.tell() / 3
    loaded = load_int8(path)
    for batch in (1, 64):  # any batch size, as traced with 2
        x = train_images[:batch]
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), quantized(x))


def test_quantize_without_calibration_images_is_a_clear_error(trained):
    with pytest.raises(ModelError, match="calibration needs at least one batch"):
        quantize_int8(trained[0], [])


def test_quantization_aware_training_recovers_the_accuracy_and_converts_to_int8_kernels(trained, tmp_path):
    model, train_images = trained
    test_images, test_labels = quadrant_task(1000, seed=2)
    _, train_labels = quadrant_task(512, seed=1)
    qat = prepare_qat(model, train_images[:2])
    assert is_quantization_aware(qat) and not is_quantization_aware(model)
    optimizer = torch.optim.Adam(qat.parameters(), lr=1e-4)
    for x, y in zip(train_images.split(32), train_labels.split(32), strict=True):  # one fine-tuning epoch
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(qat(x), y).backward()
        optimizer.step()
    # its state is tensors only: a checkpoint of it loads with weights_only=True
    buffer = io.BytesIO()
    torch.save(qat.state_dict(), buffer)
    buffer.seek(0)
    qat.load_state_dict(torch.load(buffer, weights_only=True))

    int8 = convert_qat(qat)
    assert any("quantized" in type(m).__module__ for m in int8.modules())  # int8 modules, not fake ones
    assert not is_quantization_aware(int8)
    fp32 = accuracy(model, test_images, test_labels)
    assert accuracy(int8, test_images, test_labels) >= fp32 - MAX_ACCURACY_DROP
    save_int8(int8, test_images[:2], tmp_path / "qat.pt")
    assert accuracy(load_int8(tmp_path / "qat.pt"), test_images, test_labels) >= fp32 - MAX_ACCURACY_DROP


def test_a_quantization_aware_classifier_starts_from_fp32_weights_and_refuses_untraceable_architectures(
    tmp_path,
):
    fp32 = ImageClassifier(arch="lenet5", in_channels=1, image_size=28)
    ckpt = tmp_path / "fp32.ckpt"
    torch.save({"state_dict": fp32.state_dict(), "hyper_parameters": dict(fp32.hparams)}, ckpt)
    qat = ImageClassifier(arch="lenet5", in_channels=1, image_size=28, quantization_aware=True)
    qat.load_architecture_weights(str(ckpt))
    assert is_quantization_aware(qat.model)
    images = torch.rand(8, 1, 28, 28)
    with torch.no_grad():  # fake quantization moves the logits a little, not the predictions' scale
        assert torch.allclose(qat.model.eval()(images), fp32.model.eval()(images), atol=0.05)
    with pytest.raises(ModelError, match="'airbench' cannot be quantized to int8"):
        ImageClassifier(arch="airbench", quantization_aware=True)
