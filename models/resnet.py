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

from .registry import register_model


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


@register_model
def resnet18(num_classes: int = 10, in_channels: int = 3, imagenet_stem: bool = False) -> ResNet:
    return _resnet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, imagenet_stem)


@register_model
def resnet34(num_classes: int = 10, in_channels: int = 3, imagenet_stem: bool = False) -> ResNet:
    return _resnet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, imagenet_stem)


@register_model
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


@register_model
def resnet8(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-8: 3 stages of 1 basic block, 0.08M parameters; not in the paper, the usual small student
    of knowledge distillation on CIFAR."""
    return CifarResNet(8, num_classes, in_channels)


@register_model
def resnet14(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-14: 3 stages of 2 basic blocks, 0.17M parameters; not in the paper."""
    return CifarResNet(14, num_classes, in_channels)


@register_model
def resnet20(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-20: 3 stages of 3 basic blocks, 0.27M parameters (91.25% on CIFAR-10 in the paper)."""
    return CifarResNet(20, num_classes, in_channels)


@register_model
def resnet32(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-32: 3 stages of 5 basic blocks, 0.46M parameters (92.49% in the paper)."""
    return CifarResNet(32, num_classes, in_channels)


@register_model
def resnet44(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-44: 3 stages of 7 basic blocks, 0.66M parameters (92.83% in the paper)."""
    return CifarResNet(44, num_classes, in_channels)


@register_model
def resnet56(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-56: 3 stages of 9 basic blocks, 0.85M parameters (93.03% in the paper)."""
    return CifarResNet(56, num_classes, in_channels)


@register_model
def resnet110(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-110: 3 stages of 18 basic blocks, 1.7M parameters (93.57% in the paper)."""
    return CifarResNet(110, num_classes, in_channels)
