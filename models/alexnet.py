"""AlexNet (Krizhevsky, Sutskever and Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks", 2012), adapted to small images as CIFAR ports do.

Kept from the paper: five convolutional layers (64, 192, 384, 256, 256 channels as in torchvision's
single-GPU version), ReLU, overlapping 3x3 max pooling with stride 2, and three fully connected layers
with dropout. Adapted: the 11x11 stride-4 first convolution becomes 5x5 stride 1 (a 32x32 image would
vanish otherwise), the second convolution keeps 5x5, the fully connected layers are 1024 wide instead of
4096 (the 6x6x256 ImageNet maps are 3x3x256 here), and adaptive average pooling fixes the map size for
any input of 28x28 or more.
"""

import torch
import torch.nn as nn

from .registry import register_model


class AlexNet(nn.Module):
    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, dropout: float = 0.5, fc_width: int = 1024
    ):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((3, 3))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 3 * 3, fc_width),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_width, fc_width),
            nn.ReLU(inplace=True),
            nn.Linear(fc_width, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


@register_model
def alexnet(
    num_classes: int = 10, in_channels: int = 3, dropout: float = 0.5, fc_width: int = 1024
) -> AlexNet:
    return AlexNet(num_classes, in_channels, dropout, fc_width)
