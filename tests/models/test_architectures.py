import pytest
import torch

from cnnlab.models import get_model, list_models

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
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"{name}: parameters without gradient: {missing}"


# Exact counts for 10 classes: LeNet-5 on 1x32x32 as in the paper (C1 156, C3 2,416, C5 48,120, F6 10,164,
# output 850); SimpleCNN and the MNIST CNN from the source articles' layers.
@pytest.mark.parametrize(
    "name,channels,size,expected",
    [
        ("lenet5", 1, 28, 61_706),
        ("lenet5", 1, 32, 61_706),
        ("simplecnn", 3, 32, 448 + 4_640 + 2048 * 512 + 512 + 5_130),
        ("mnist_cnn", 1, 28, 320 + 18_496 + 3136 * 10 + 10),
    ],
)
def test_parameter_counts_match_the_layers(name, channels, size, expected):
    assert count(get_model(name, num_classes=10, in_channels=channels, image_size=size)) == expected


# Published counts (10 classes, CIFAR forms), within 1%: He et al. 2016 table 6 (ResNet-20 0.27M,
# ResNet-56 0.85M, ResNet-110 1.7M); the common CIFAR ports (kuangliu/pytorch-cifar: ResNet-18 11.17M,
# ResNet-34 21.28M, ResNet-50 23.52M, VGG-16 with BN 14.73M, MobileNetV2 2.24M); DeiT-Tiny's 5.7M less
# its 1000-class head and the patch embedding of 16x16 patches (5.36M).
@pytest.mark.parametrize(
    "name,expected",
    [
        ("resnet20", 0.27e6),
        ("resnet56", 0.85e6),
        ("resnet110", 1.73e6),  # "1.7M" in the paper, rounded
        ("resnet18", 11.17e6),
        ("resnet34", 21.28e6),
        ("resnet50", 23.52e6),
        ("vgg16_bn", 14.73e6),
        ("mobilenetv2", 2.24e6),
        ("vit_tiny", 5.36e6),
    ],
)
def test_parameter_counts_match_published_ones(name, expected):
    assert count(get_model(name, num_classes=10, in_channels=3, image_size=32)) == pytest.approx(
        expected, rel=0.01
    )


def test_resnet18_imagenet_stem_matches_torchvision():
    import torchvision

    ours = get_model("resnet18", num_classes=1000, imagenet_stem=True)
    assert count(ours) == count(torchvision.models.resnet18()) == 11_689_512
    assert ours(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_airbench_whitening_decorrelates_the_training_patches():
    torch.manual_seed(0)
    # Correlated "images": smooth noise, so neighbouring pixels and channels covary.
    images = torch.nn.functional.avg_pool2d(torch.randn(256, 3, 34, 34), 3, stride=1)
    model = get_model("airbench", num_classes=10)
    assert not model.initialized and not model.whiten.weight.requires_grad
    model.init_from_data(images)
    assert model.initialized
    half = model.whiten.weight.shape[0] // 2
    out = torch.nn.functional.conv2d(images, model.whiten.weight[:half])  # the positive filters
    covariance = torch.cov(out.permute(1, 0, 2, 3).reshape(half, -1))
    torch.testing.assert_close(covariance, torch.eye(half), atol=0.05, rtol=0)
    torch.testing.assert_close(model.whiten.weight[half:], -model.whiten.weight[:half])


def test_airbench_is_built_as_airbench94_builds_it():
    model = get_model("airbench", num_classes=10)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 6
    assert all(not m.weight.requires_grad and m.bias.requires_grad and m.eps == 1e-12 for m in norms)
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in norms)  # the frozen scale is 1
    convs = [m for m in model.layers.modules() if isinstance(m, torch.nn.Conv2d)]
    for conv in convs:  # identity on the first input-many filters, PyTorch's default on the others
        identity = torch.zeros_like(conv.weight[: conv.in_channels])
        torch.nn.init.dirac_(identity)
        assert torch.equal(conv.weight[: conv.in_channels], identity)
        if conv.out_channels > conv.in_channels:
            assert conv.weight[conv.in_channels :].abs().sum() > 0
    # the final 3x3 max pooling with stride 3 sees the top-left 3x3 of the 4x4 map only
    features = model.layers[:-2](torch.randn(2, 24, 32, 32))
    assert features.shape[-2:] == (4, 4)
    pooled = model.layers[-2:](features)
    torch.testing.assert_close(pooled[..., 0, 0], features[..., :3, :3].amax(dim=(-2, -1)))
    assert model(torch.randn(2, 3, 96, 96)).shape == (2, 10)  # larger images end in one vector too


@pytest.mark.parametrize("name", ["vgg11", "vgg13", "vgg16", "vgg19"])
def test_vgg_without_batch_norm_keeps_the_signal(name):
    # With PyTorch's default initialisation the features of an untrained VGG-11 had 0.006 of the input's
    # spread and it stayed at chance on CIFAR-10; torchvision's initialisation keeps 0.04-0.1.
    torch.manual_seed(0)
    model = get_model(name, num_classes=10, in_channels=3, image_size=32)
    with torch.no_grad():
        features = model.pool(model.features(torch.randn(64, 3, 32, 32)))
    assert features.std() > 0.02
