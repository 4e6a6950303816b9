"""VGG (Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
2015): stacks of 3x3 convolutions between 2x2 max poolings, the variants given as a table as in
torchvision's ``cfgs``.

CIFAR head: after five poolings a 32x32 image is a 1x1x512 map, so the three 4096-wide layers become
one linear layer (as in the common CIFAR ports); poolings round up, so 28x28 inputs also end at 1x1.
``_bn`` variants add batch norm after every convolution.
"""

import torch
import torch.nn as nn

from .registry import register_model

# Numbers: output channels of a 3x3 convolution; "M": 2x2 max pooling.
cfgs: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ],
}


def make_layers(cfg: list[int | str], in_channels: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
            continue
        layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, cfg: str, num_classes: int = 10, in_channels: int = 3, batch_norm: bool = False):
        super().__init__()
        self.features = make_layers(cfgs[cfg], in_channels, batch_norm)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(512, num_classes)
        # torchvision's VGG initialisation. PyTorch's default (variance 1/(3 fan_in)) shrinks the signal at
        # every ReLU layer: without batch norm, VGG-11 then stays at chance (10.00% after 200 steps).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


@register_model
def vgg11(num_classes: int = 10, in_channels: int = 3) -> VGG:
    """VGG-11 (configuration A)."""
    return VGG("A", num_classes, in_channels, batch_norm=False)


@register_model
def vgg11_bn(num_classes: int = 10, in_channels: int = 3) -> VGG:
    """VGG-11 (configuration A) with batch normalisation after every convolution."""
    return VGG("A", num_classes, in_channels, batch_norm=True)


@register_model
def vgg13(num_classes: int = 10, in_channels: int = 3) -> VGG:
    """VGG-13 (configuration B)."""
    return VGG("B", num_classes, in_channels, batch_norm=False)


@register_model
def vgg13_bn(num_classes: int = 10, in_channels: int = 3) -> VGG:
    """VGG-13 (configuration B) with batch normalisation after every convolution."""
    return VGG("B", num_classes, in_channels, batch_norm=True)


@register_model
def vgg16(num_classes: int = 10, in_channels: int = 3) -> VGG:
    """VGG-16 (configuration D)."""
    return VGG("D", num_classes, in_channels, batch_norm=False)


@register_model
def vgg16_bn(num_classes: int = 10, in_channels: int = 3) -> VGG:
    """VGG-16 (configuration D) with batch normalisation after every convolution."""
    return VGG("D", num_classes, in_channels, batch_norm=True)


@register_model
def vgg19(num_classes: int = 10, in_channels: int = 3) -> VGG:
    """VGG-19 (configuration E)."""
    return VGG("E", num_classes, in_channels, batch_norm=False)


@register_model
def vgg19_bn(num_classes: int = 10, in_channels: int = 3) -> VGG:
    """VGG-19 (configuration E) with batch normalisation after every convolution."""
    return VGG("E", num_classes, in_channels, batch_norm=True)
