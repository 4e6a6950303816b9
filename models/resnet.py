"""ResNet (He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition", 2016).

``resnet18/34/50`` are built on torchvision's ``ResNet``, ``BasicBlock`` and ``Bottleneck``. The default
is the CIFAR form used by most CIFAR-10 ports: a 3x3 stride-1 stem and no max pooling, so a 32x32 image
reaches the last stage as 4x4 maps (ResNet-18: 11.17M parameters for 10 classes).
``imagenet_stem=True`` keeps torchvision's 7x7 stride-2 stem and max pooling, for larger images.

``resnet20/32/44/56/110`` are the CIFAR networks of the paper's section 4.2: three stages of 16, 32 and
64 channels with n basic blocks each (depth 6n + 2), and parameter-free shortcuts (option A: identity,
subsampled and zero-padded where the shape changes). ResNet-20 has 0.27M parameters, ResNet-56 0.85M.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from models.registry import register_model


def _resnet(block, layers: list[int], num_classes: int, in_channels: int, imagenet_stem: bool) -> ResNet:
    model = ResNet(block, layers, num_classes=num_classes)
    if imagenet_stem:
        if in_channels != 3:
            model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    else:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    # torchvision initialises conv1 in its constructor; give the replacement the same init.
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model


@register_model("resnet18")
def resnet18(num_classes: int = 10, in_channels: int = 3, imagenet_stem: bool = False) -> ResNet:
    return _resnet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, imagenet_stem)


@register_model("resnet34")
def resnet34(num_classes: int = 10, in_channels: int = 3, imagenet_stem: bool = False) -> ResNet:
    return _resnet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, imagenet_stem)


@register_model("resnet50")
def resnet50(num_classes: int = 10, in_channels: int = 3, imagenet_stem: bool = False) -> ResNet:
    return _resnet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, imagenet_stem)


class CifarBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity shortcut (option A where the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.extra = stride, cout - cin

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra:
            x = F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n + 2, got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for stage, width in enumerate((16, 32, 64)):
            for i in range(n):
                blocks.append(CifarBlock(cin, width, 2 if stage and i == 0 else 1))
                cin = width
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _register_cifar(depth: int) -> None:
    def build(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
        return CifarResNet(depth, num_classes, in_channels)

    build.__name__ = f"resnet{depth}"
    register_model(f"resnet{depth}")(build)


for _depth in (20, 32, 44, 56, 110):
    _register_cifar(_depth)
