import pytest
import torch

from models import get_model, list_models

SHAPES = [(1, 28), (3, 32)]


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("channels,size", SHAPES)
def test_forward_shape_and_every_parameter_learns(name, channels, size):
    torch.manual_seed(0)
    model = get_model(name, num_classes=7, in_channels=channels, image_size=size)
    x = torch.randn(2, channels, size, size)
    logits = model(x)
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()
    logits.logsumexp(dim=1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"{name}: parameters without gradient: {missing}"


# Reference counts for 10 classes: LeNet-5 on 1x32x32 as in the paper (C1 156, C3 2,416, C5 48,120,
# F6 10,164, output 850); ResNet-18 CIFAR form 11,173,962 (torchvision's 11,689,512 with a 3x3 stem and
# a 10-class head); SimpleCNN 2,118,026 / MNIST CNN 50,186 computed from the source articles' layers.
@pytest.mark.parametrize(
    "name,channels,size,expected",
    [
        ("lenet5", 1, 28, 61_706),
        ("lenet5", 1, 32, 61_706),
        ("resnet18", 3, 32, 11_173_962),
        ("simplecnn", 3, 32, 448 + 4_640 + 2048 * 512 + 512 + 5_130),
        ("mnist_cnn", 1, 28, 320 + 18_496 + 3136 * 10 + 10),
    ],
)
def test_parameter_counts_match_the_references(name, channels, size, expected):
    assert count(get_model(name, num_classes=10, in_channels=channels, image_size=size)) == expected


def test_resnet18_imagenet_stem_matches_torchvision():
    import torchvision

    ours = get_model("resnet18", num_classes=1000, imagenet_stem=True)
    assert count(ours) == count(torchvision.models.resnet18()) == 11_689_512
    assert ours(torch.randn(1, 3, 64, 64)).shape == (1, 1000)
