import pytest
import torch
import torch.nn.functional as F

from cnnlab.datamodules.augment import augment_batch, cutout, random_crop, random_flip


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


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_each_crop_is_a_window_of_its_own_padded_image(mode):
    """The padded image as torch pads it (``constant`` or ``reflect``), cropped back at some offset;
    non-square colour images, so a mix-up of rows, columns or channels shows."""
    torch.manual_seed(0)
    x = torch.randint(0, 256, (32, 3, 6, 9), dtype=torch.uint8)
    pad = 2
    padded = F.pad(x.float(), (pad,) * 4, mode="constant" if mode == "zeros" else "reflect")
    out = random_crop(x, pad, mode)
    offsets = set()
    for i in range(len(x)):
        windows = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                   if torch.equal(out[i].float(), padded[i, :, dy : dy + 6, dx : dx + 9])]  # fmt: skip
        assert windows, f"image {i} is not a crop of its padded image"
        offsets.add(windows[0])
    assert len(offsets) > 10  # the offsets vary from image to image


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
