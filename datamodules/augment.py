"""Batched augmentation on the training device: whole batches at once, no per-image Python work.

Every function takes a ``(B, C, H, W)`` batch (uint8 or float) and returns a batch of the same shape and
dtype; image ``i`` stays at index ``i``, so labels stay aligned. Randomness comes from torch's generator
on the batch's device (seeded by ``seed_everything``).
"""

import torch
import torch.nn.functional as F


def _reflected(n: int, pad: int, offsets: torch.Tensor) -> torch.Tensor:
    """Source index of each output position, per image, for a window at ``offsets - pad`` over the image
    mirrored at its borders (without repeating the edge pixel, as ``padding_mode="reflect"``)."""
    pos = (offsets[:, None] + torch.arange(n, device=offsets.device) - pad).abs()
    return torch.where(pos >= n, 2 * (n - 1) - pos, pos)


def random_crop(x: torch.Tensor, padding: int, mode: str = "zeros") -> torch.Tensor:
    """Pad every side by ``padding`` (zeros or reflection) and crop each image back at a random offset."""
    if padding <= 0:
        return x
    if mode not in ("zeros", "reflect"):
        raise ValueError(f"padding mode must be 'zeros' or 'reflect', got {mode!r}")
    b, c, h, w = x.shape
    dy = torch.randint(0, 2 * padding + 1, (b,), device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), device=x.device)
    if mode == "zeros":  # the window starts at (dy, dx) of the zero-padded image
        x = F.pad(x, (padding,) * 4)
        rows = dy[:, None] + torch.arange(h, device=x.device)
        cols = dx[:, None] + torch.arange(w, device=x.device)
    else:
        rows, cols = _reflected(h, padding, dy), _reflected(w, padding, dx)
    # One gather over each image's flattened pixels: 3.1-5.3x faster on a 2-core CPU than indexing with
    # row and column index tensors (python -m benchmarks.augment).
    index = (rows[:, :, None] * x.shape[3] + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return x.reshape(b, c, -1).gather(2, index).view(b, c, h, w)


def random_flip(x: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``."""
    flip = torch.rand(x.shape[0], device=x.device) < p
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def cutout(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero a ``size`` x ``size`` square at a random centre of each image (DeVries and Taylor, 2017);
    squares near the border are cut by it."""
    if size <= 0:
        return x
    b, _, h, w = x.shape
    top = torch.randint(0, h, (b,), device=x.device)[:, None] - size // 2
    left = torch.randint(0, w, (b,), device=x.device)[:, None] - size // 2
    rows = torch.arange(h, device=x.device)[None]
    cols = torch.arange(w, device=x.device)[None]
    in_rows = (rows >= top) & (rows < top + size)
    in_cols = (cols >= left) & (cols < left + size)
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])
    return x * keep[:, None].to(x.dtype)


class Cutout(torch.nn.Module):
    """``cutout`` for one image, for the per-image transform path."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return cutout(image[None], self.size)[0]


def augment_batch(
    x: torch.Tensor,
    crop_padding: int = 0,
    pad_mode: str = "zeros",
    flip: bool = False,
    translate: int = 0,
    cutout_size: int = 0,
) -> torch.Tensor:
    """The training augmentation of a data module, in the order of the per-image path."""
    x = random_crop(x, crop_padding, pad_mode)
    if flip:
        x = random_flip(x)
    x = random_crop(x, translate, "zeros")
    return cutout(x, cutout_size)
