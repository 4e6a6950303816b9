"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", 2018), on
torchvision's ``MobileNetV2``.

CIFAR form (as in the common CIFAR ports): the stem convolution has stride 1 instead of 2 and the
second stage (24 channels) stride 1 instead of 2, so a 32x32 image is downsampled 8x, to 4x4 maps,
instead of 32x. Same parameters as torchvision's: 2.24M for 10 classes.
"""

import torch.nn as nn
from torchvision.models.mobilenetv2 import MobileNetV2

from .registry import register_model

# t (expansion), c (channels), n (blocks), s (stride of the first block); ImageNet: second row stride 2.
CIFAR_SETTING = [
    [1, 16, 1, 1],
    [6, 24, 2, 1],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
]


@register_model
def mobilenetv2(
    num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0, dropout: float = 0.2
) -> MobileNetV2:
    model = MobileNetV2(num_classes, width_mult, CIFAR_SETTING, dropout=dropout)
    stem = model.features[0][0]
    model.features[0][0] = nn.Conv2d(in_channels, stem.out_channels, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.features[0][0].weight, mode="fan_out")
    return model
