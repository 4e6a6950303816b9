"""The small CNNs of the source articles.

``SimpleCNN`` is the CIFAR-10 example of the convolution tutorial: two 3x3 convolutions (16 and 32
channels), each followed by ReLU and 2x2 max pooling, then a 512-unit hidden layer. The article sizes
its first linear layer as ``32 * 16 * 16`` although two poolings leave 8x8 maps of a 32x32 image; here
the size follows from ``image_size`` (32 * 8 * 8 on CIFAR-10, 32 * 7 * 7 on MNIST).

``MNISTCNN`` is the two-layer MNIST example (conv 32, conv 64, one linear layer with Xavier
initialisation).
"""

import torch
import torch.nn as nn

from .registry import register_model


class SimpleCNN(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, hidden: int = 512):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * side * side, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class MNISTCNN(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.fc = nn.Linear(64 * side * side, num_classes)
        nn.init.xavier_uniform_(self.fc.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x), 1))


@register_model
def simplecnn(
    num_classes: int = 10, in_channels: int = 3, image_size: int = 32, hidden: int = 512
) -> SimpleCNN:
    return SimpleCNN(num_classes, in_channels, image_size, hidden)


@register_model
def mnist_cnn(num_classes: int = 10, in_channels: int = 1, image_size: int = 28) -> MNISTCNN:
    return MNISTCNN(num_classes, in_channels, image_size)
