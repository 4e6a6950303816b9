"""LeNet-5 (LeCun, Bottou, Bengio and Haffner, "Gradient-based learning applied to document
recognition", 1998).

C1 (6 maps, 5x5) - S2 (2x2 average pooling) - C3 (16 maps, 5x5) - S4 - C5 (120) - F6 (84) - output,
with tanh activations as in the paper. Simplified as usual: S2/S4 are plain average pooling (the paper's
subsampling layers have a trainable coefficient and bias), C3 connects to all six S2 maps (the paper uses
a sparse connection table) and the output is a linear layer instead of RBF units.

The paper feeds 32x32 images (28x28 digits padded); smaller inputs are zero-padded by C1 to 32x32, so
MNIST's 1x28x28 and CIFAR-10's 3x32x32 give the same 16x5x5 maps before C5.
"""

import torch
import torch.nn as nn

from .registry import register_model


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 32):
        super().__init__()
        pad = max(0, (32 - image_size + 1) // 2)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=pad),  # C1
            nn.Tanh(),
            nn.AvgPool2d(2),  # S2
            nn.Conv2d(6, 16, kernel_size=5),  # C3
            nn.Tanh(),
            nn.AvgPool2d(2),  # S4
        )
        side = ((image_size + 2 * pad - 4) // 2 - 4) // 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * side * side, 120),  # C5
            nn.Tanh(),
            nn.Linear(120, 84),  # F6
            nn.Tanh(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model
def lenet5(num_classes: int = 10, in_channels: int = 1, image_size: int = 32) -> LeNet5:
    return LeNet5(num_classes, in_channels, image_size)
