import pytest
import torch

from datamodules.augment import augment_batch, cutout, random_crop, random_flip


def labelled_batch(n: int = 64, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i is filled with the value labels[i] + 1, so any mix-up of images and labels shows."""
    labels = torch.arange(n) % 200
    return (labels + 1).to(torch.uint8).view(n, 1, 1, 1).expand(n, 3, size, size).contiguous(), labels


@pytest.mark.parametrize(
    "op",
    [
        lambda x: random_crop(x, 4, "zeros"),
        lambda x: random_crop(x, 4, "reflect"),
        random_flip,
        lambda x: cutout(x, 4),
        lambda x: augment_batch(x, crop_padding=2, flip=True, translate=2, cutout_size=3),
    ],
)
def test_augmentation_keeps_shape_dtype_and_label_alignment(op):
    torch.manual_seed(0)
    x, labels = labelled_batch()
    out = op(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    # Each image keeps only its own value (or zeros from padding and cutout).
    assert torch.equal(out.amax(dim=(1, 2, 3)), (labels + 1).to(torch.uint8))


def test_random_crop_shifts_content_and_pads_with_zeros_or_reflection():
    torch.manual_seed(0)
    x = torch.arange(64, dtype=torch.uint8).view(1, 1, 8, 8).repeat(256, 1, 1, 1) + 1
    zeros = random_crop(x, 2, "zeros")
    assert (zeros == 0).any() and not (zeros == x).all(dim=(1, 2, 3)).all()
    reflect = random_crop(x, 2, "reflect")
    assert not (reflect == 0).any()
    assert (reflect == x).all(dim=(1, 2, 3)).any()  # offset (0, 0) keeps the image
    # Every crop is a window of the reflected image: the row differences stay 8 or -8 (reflection).
    assert set((reflect[:, 0, 1:, 0].int() - reflect[:, 0, :-1, 0].int()).unique().tolist()) <= {8, -8}
    assert torch.equal(random_crop(x, 0), x)


def test_flip_mirrors_about_half_the_images():
    torch.manual_seed(0)
    x = torch.arange(8, dtype=torch.uint8).view(1, 1, 1, 8).repeat(1000, 1, 8, 1)
    flipped = (random_flip(x) != x).any(dim=(1, 2, 3)).float().mean()
    assert 0.4 < flipped < 0.6


def test_cutout_zeros_a_square_of_at_most_size_squared_pixels():
    torch.manual_seed(0)
    x = torch.full((500, 1, 16, 16), 9, dtype=torch.uint8)
    zeroed = (cutout(x, 6) == 0).sum(dim=(1, 2, 3))
    assert zeroed.max() == 36 and zeroed.min() >= 9  # centre inside: at least a 3x3 corner remains
