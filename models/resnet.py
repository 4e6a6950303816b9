"""ResNet (He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition", 2016).

Built on torchvision's ``ResNet`` and ``BasicBlock``. The default is the CIFAR form used by most
CIFAR-10 ports: a 3x3 stride-1 stem and no max pooling, so a 32x32 image reaches the last stage as 4x4
maps (ResNet-18: 11.17M parameters for 10 classes). ``imagenet_stem=True`` keeps torchvision's 7x7
stride-2 stem and max pooling, for larger images.
"""

import torch.nn as nn
from torchvision.models.resnet import BasicBlock, ResNet

from models.registry import register_model


def _resnet(layers: list[int], num_classes: int, in_channels: int, imagenet_stem: bool) -> ResNet:
    model = ResNet(BasicBlock, layers, num_classes=num_classes)
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
    return _resnet([2, 2, 2, 2], num_classes, in_channels, imagenet_stem)
