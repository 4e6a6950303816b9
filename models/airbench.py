"""An airbench-style network for fast CIFAR-10 training (Keller Jordan's airbench94, 2024; the
``cifar10_speedrun`` recipe).

A 2x2 patch-whitening convolution (its weights are the eigenvectors of the training images' 2x2 patch
covariance, scaled to unit variance, with their negatives; frozen, only its bias learns), then three
conv groups (conv 3x3 - max pool - batch norm - GELU - conv 3x3 - batch norm - GELU) of 64, 256 and 256
channels, a 3x3 max pooling and a linear layer scaled by 1/9. About 2M parameters and 0.1 GMACs per
32x32 image. ``init_from_data`` sets the whitening weights; ``ImageClassifier`` calls it with training
images when fitting starts (once: the flag is saved in checkpoints).

As airbench94 builds it: batch norm with its scale frozen at 1 (only the shift learns) and eps 1e-12,
convolutions initialised with the identity (``dirac_``) on their first input-many filters, and a final
3x3 max pooling with stride 3, which on a 32x32 input sees the top-left 3x3 of the 4x4 map. Other input
sizes: a global max pooling follows, so the head always gets one vector.
"""

import torch
import torch.nn as nn

from .registry import register_model


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 3, padding="same", bias=False)
    with torch.no_grad():
        # Identity on the first cin filters: the group starts close to passing its input through.
        nn.init.dirac_(conv.weight[: min(cin, cout)])
    return conv


def batch_norm(channels: int) -> nn.BatchNorm2d:
    # momentum 0.4 (PyTorch's convention: the weight of the new batch); a frozen scale of 1 and eps 1e-12.
    norm = nn.BatchNorm2d(channels, eps=1e-12, momentum=0.4)
    norm.weight.requires_grad_(False)
    return norm


def conv_group(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        conv3x3(cin, cout),
        nn.MaxPool2d(2),
        batch_norm(cout),
        nn.GELU(),
        conv3x3(cout, cout),
        batch_norm(cout),
        nn.GELU(),
    )


class AirbenchNet(nn.Module):
    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, widths: tuple[int, int, int] = (64, 256, 256)
    ):
        super().__init__()
        patch_dims = in_channels * 2 * 2
        self.whiten = nn.Conv2d(in_channels, 2 * patch_dims, kernel_size=2, bias=True)
        self.whiten.weight.requires_grad_(False)
        self.register_buffer("initialized", torch.tensor(False))
        w1, w2, w3 = widths
        self.layers = nn.Sequential(
            nn.GELU(),
            conv_group(2 * patch_dims, w1),
            conv_group(w1, w2),
            conv_group(w2, w3),
            nn.MaxPool2d(3),
            nn.AdaptiveMaxPool2d(1),
        )
        self.head = nn.Linear(w3, num_classes, bias=False)

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the whitening filters from normalised training images ``(N, C, H, W)``."""
        c, k = images.shape[1], self.whiten.kernel_size[0]
        patches = (
            images.float().unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)
        )
        covariance = patches.T @ patches / len(patches)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        filters = (eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]).reshape(-1, c, k, k)
        self.whiten.weight.copy_(torch.cat([filters, -filters]).to(self.whiten.weight))
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.layers(self.whiten(x)), 1)) / 9


@register_model
def airbench(
    num_classes: int = 10, in_channels: int = 3, widths: tuple[int, int, int] = (64, 256, 256)
) -> AirbenchNet:
    return AirbenchNet(num_classes, in_channels, tuple(widths))
