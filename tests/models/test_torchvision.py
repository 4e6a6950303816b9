"""``torchvision:<name>`` models, including the pretrained-weights path, without any network."""

import pytest
import torch

from cnnlab.models import get_model
from cnnlab.models.errors import ModelError, UnknownNameError
from tests.fakedata import place_resnet18_weights


def test_pretrained_weights_come_from_the_hub_cache_and_the_head_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    state = place_resnet18_weights(tmp_path)
    model = get_model("torchvision:resnet18", num_classes=10, in_channels=3, pretrained=True, input_size=64)
    assert torch.equal(model.net.conv1.weight, state["conv1.weight"])
    assert torch.equal(model.net.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    assert model.net.fc.out_features == 10
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)  # resized to 64 inside


def test_grayscale_inputs_and_other_heads():
    model = get_model("torchvision:mobilenet_v3_small", num_classes=4, in_channels=1, image_size=28)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 4)
    assert model.net.classifier[-1].out_features == 4


def test_missing_weights_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_network)
    with pytest.raises(
        ModelError, match=r"place resnet18-.*\.pth in .*checkpoints or set arch_kwargs pretrained: false"
    ):
        get_model("torchvision:resnet18", num_classes=10, pretrained=True)


def _no_network(*args, **kwargs):
    raise OSError("no network")


def test_unknown_torchvision_name():
    with pytest.raises(UnknownNameError, match="Did you mean torchvision:resnet18"):
        get_model("torchvision:resnet81")
