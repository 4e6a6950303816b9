import re
from pathlib import Path

import pytest
import torch.nn as nn

import cnnlab.models
from cnnlab.models import get_model, list_models, register_model
from cnnlab.models.errors import UnknownNameError

MODELS = Path(cnnlab.models.__file__).parent


def test_known_names_build_modules():
    assert {"simplecnn", "mnist_cnn", "lenet5", "resnet18"} <= set(list_models())
    assert isinstance(get_model("lenet5", num_classes=3), nn.Module)


def test_unknown_name_lists_known_ones_and_close_matches():
    with pytest.raises(UnknownNameError) as err:
        get_model("resnet81")
    message = str(err.value)
    assert "'resnet81'" in message and "resnet18" in message.split("Did you mean")[1].split("Known")[0]
    for name in list_models():
        assert name in message


def test_duplicate_name_is_refused():
    def lenet5(**kwargs):
        return nn.Identity()

    with pytest.raises(ValueError, match="already registered"):
        register_model(lenet5)


def test_every_architecture_is_a_def_of_its_name_in_the_models_package():
    source = "\n".join(p.read_text() for p in MODELS.glob("*.py"))
    for name in list_models():
        assert re.search(rf"^@register_model\ndef {name}\(", source, re.M), name


def test_data_arguments_go_only_to_constructors_that_take_them():
    # resnet18 takes no image_size; the data module offers it to every architecture.
    model = get_model("resnet18", num_classes=4, in_channels=1, image_size=28)
    assert model.fc.out_features == 4 and model.conv1.in_channels == 1
