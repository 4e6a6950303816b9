import pytest
import torch.nn as nn

from cnnlab.errors import UnknownNameError
from models import get_model, list_models, register_model


def test_known_names_build_modules():
    assert {"simplecnn", "mnist_cnn", "lenet5", "resnet18"} <= set(list_models())
    assert isinstance(get_model("lenet5", num_classes=3), nn.Module)


def test_unknown_name_lists_known_ones_and_close_matches():
    with pytest.raises(UnknownNameError) as err:
        get_model("resnet81")
    message = str(err.value)
    assert "'resnet81'" in message and "Did you mean resnet18" in message
    for name in list_models():
        assert name in message


def test_duplicate_name_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_model("lenet5")(lambda **kw: nn.Identity())


def test_data_arguments_go_only_to_constructors_that_take_them():
    # resnet18 takes no image_size; the data module offers it to every architecture.
    model = get_model("resnet18", num_classes=4, in_channels=1, image_size=28)
    assert model.fc.out_features == 4 and model.conv1.in_channels == 1
