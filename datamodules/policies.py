"""Augmentation policies on the training device: RandAugment, TrivialAugmentWide and AutoAugment (CIFAR-10
policy), applied to whole batches with independent random ops and magnitudes for every image.

The semantics are torchvision's (``torchvision.transforms.v2``): the op lists, magnitude bins, signs and
sub-policies are read from torchvision's own classes, and every op computes what torchvision's functional op
computes (nearest interpolation, zero fill, the same rounding of uint8 results), so a policy draws from the
same distribution of images as torchvision's per-image transform. What differs is the work: each op runs
once per batch on the images that drew it, with per-image magnitudes; all geometric ops of a round share one
``grid_sample`` call with a matrix per image. Each op writes its result into the images it is given, views
of the policy's own gathered copy of the batch: the op functions below change their argument.

Batches are ``(B, C, H, W)``, uint8 (0..255) or float (0..1), before normalisation; the result has the same
shape and dtype and image ``i`` stays at index ``i``. Randomness comes from torch's generator on the batch's
device (seeded by ``seed_everything``).
"""

import math
from collections.abc import Sequence
from contextlib import contextmanager
from functools import lru_cache

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import AutoAugment, AutoAugmentPolicy, RandAugment, TrivialAugmentWide
from torchvision.transforms.v2 import functional as TF
from torchvision.transforms.v2.functional._geometry import _get_inverse_affine_matrix

POLICIES = ("none", "randaugment", "trivialaugment", "autoaugment")
NUM_BINS = 31  # magnitude bins of RandAugment and TrivialAugmentWide (torchvision's default)
_AUTOAUGMENT_BINS = 10
_GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")


def _bound(x: torch.Tensor) -> float:
    return 1.0 if x.is_floating_point() else 255.0


def _store(result: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Clamp ``result`` to the image range and write it into ``x``; uint8 results are truncated, as
    torchvision's colour ops do."""
    return _store_whole(result.clamp_(0, _bound(x)), x)


def _store_whole(result: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Write ``result``, whole numbers in the image range, into ``x``. Floats become uint8 through int16: the
    same values, and on a CPU several times faster than the direct cast."""
    return x.copy_(result if x.is_floating_point() else result.to(torch.int16))


def _float_dtype(x: torch.Tensor) -> torch.dtype:
    """The float type the ops compute ``x`` in: its own, or float32 for uint8 images."""
    return x.dtype if x.is_floating_point() else torch.float32


def _float(x: torch.Tensor) -> torch.Tensor:
    return x.to(_float_dtype(x))


def _per_image(values: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Per-image factors (float64, as torchvision's Python floats) as ``(B, 1, 1, 1)`` in the images'
    float type: cast after the arithmetic on them, as torchvision's scalars are."""
    return values.view(-1, 1, 1, 1).to(dtype)


def _blend(x: torch.Tensor, fx: torch.Tensor, other: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """torchvision's ``_blend`` of ``x`` (``fx``: ``x`` as float) and ``other``, with one ratio per image."""
    # addcmul: one rounding for the second product and the sum, as torchvision's add_(alpha=...)
    blended = torch.addcmul(fx * _per_image(ratio, fx.dtype), other, _per_image(1.0 - ratio, fx.dtype))
    return _store(blended, x)


def _grayscale(fx: torch.Tensor, whole: bool) -> torch.Tensor:
    """Luma of ``fx`` (images as float) as torchvision's colour ops use it (``rgb_to_grayscale``): floored
    for ``whole`` (uint8) images, where torchvision casts it to uint8 and back (the luma of 0..255 values
    stays below 255)."""
    if fx.shape[1] == 1:
        return fx
    r, g, b = fx.unbind(dim=1)
    luma = r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze_(1)
    return luma.floor_() if whole else luma


def brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    fx = _float(x)
    return _store(fx * _per_image(factor, fx.dtype), x)


def saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:  # torchvision leaves grey images alone
        return x
    fx = _float(x)
    return _blend(x, fx, _grayscale(fx, not x.is_floating_point()), factor)


def contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with each image's mean grey, spread over a grey image: on a CPU the blend is several times
    slower with one value per image than with a value per pixel."""
    fx = _float(x)
    grey = _grayscale(fx, not x.is_floating_point())
    return _blend(x, fx, _full(grey.mean(dim=(1, 2, 3)), grey), factor)


def sharpness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with a 3x3 smoothed image (1s around a 5, over 13); the border pixels stay as they are."""
    h, w = x.shape[-2:]
    if h <= 2 or w <= 2:
        return x
    out = x.to(_float_dtype(x), copy=True)
    # torchvision's depthwise convolution, as sums of shifted views: several times faster on small images
    # on a CPU, and the same uint8 results (a sum of integers over 13 is never within float error of .5)
    rows = out[..., :-2, :] + out[..., 1:-1, :]
    rows += out[..., 2:, :]
    view = out[..., 1:-1, 1:-1]
    blurred = rows[..., :-2] + rows[..., 1:-1]
    blurred += rows[..., 2:]
    blurred.add_(view, alpha=4)
    if x.is_floating_point():
        blurred /= 13
    else:  # a sum of integers times 1/13 rounds as the sum over 13 does, and a product is cheaper
        blurred.mul_(1 / 13).round_()
    view.add_(blurred.sub_(view).mul_(_per_image(1.0 - factor, out.dtype)))
    return _store(out, x)


def autocontrast(x: torch.Tensor) -> torch.Tensor:
    """Stretch each channel from its minimum and maximum to the full range (a channel with a single value
    stays as it is): torchvision's ``autocontrast``, with its arithmetic, and the cast back to uint8 fast."""
    low = x.amin(dim=(-2, -1), keepdim=True).to(_float_dtype(x))
    high = x.amax(dim=(-2, -1), keepdim=True).to(low.dtype)
    flat = high == low
    inv_scale = torch.where(flat, 1.0, (high - low) * (1.0 / _bound(x)))
    return _store((_float(x) - torch.where(flat, 0.0, low)).div_(inv_scale), x)


def equalize(x: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation of each channel: torchvision's ``equalize`` (PIL's lookup table, from the
    pixels other than those of the channel's largest value, in 255 steps; a channel with fewer than 255 such
    pixels stays as it is), several times faster on a CPU: the table is computed in float64, exactly (its
    numbers are integers far below 2**53), and chosen per channel before the lookup instead of after it.
    Float images are equalised on their uint8 values, as torchvision does."""
    if x.is_floating_point():
        return x.copy_(TF.to_dtype(equalize(TF.to_dtype(x, torch.uint8, scale=True)), x.dtype, scale=True))
    b, c, h, w = x.shape
    # one histogram of 256 bins per channel: each value keyed by its channel, as int32 (int64 keys, as
    # scatter and gather take, cost a third more)
    keys = (x.int() + _channel_keys(b, c, x.device)).view(-1)
    hist = torch.bincount(keys, minlength=b * c * 256).view(b, c, 256)
    top = hist.gather(-1, x.flatten(-2).amax(-1, keepdim=True).long())  # pixels of the largest value
    step = (h * w - top).div_(255, rounding_mode="floor")
    # table[v] from the pixels below v (the cumulative histogram less the value's own pixels), plus half a
    # step: summed as integers, cast after (a cumulative sum into float64 costs three times as much)
    table = (hist.cumsum(-1) - hist).add_(step // 2).double()
    table = table.div_(step.double().clamp_(min=1)).floor_().clamp_(max=255)
    if bool((step == 0).any()):  # channels that stay as they are (rare in photos: checked, not computed)
        identity = _identity_table(x.device)
        table = identity + (step > 0) * (table - identity)  # arithmetic: a where is slower
    torch.index_select(table.to(torch.int16).to(torch.uint8).view(-1), 0, keys, out=x.view(-1))
    return x


@lru_cache(maxsize=1024)
def _channel_keys(b: int, c: int, device: torch.device) -> torch.Tensor:
    """The first histogram bin of each of ``b`` x ``c`` channels, ``(b, c, 1, 1)``, as int32."""
    return torch.arange(0, b * c * 256, 256, dtype=torch.int32, device=device).view(b, c, 1, 1)


@lru_cache(maxsize=4)
def _identity_table(device: torch.device) -> torch.Tensor:
    return torch.arange(256, dtype=torch.float64, device=device)


def posterize(x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Keep the ``bits`` highest bits of each value, per image."""
    bits = bits.long()
    if x.is_floating_point():
        levels = _per_image(2.0**bits, x.dtype)
        return x.copy_((x * levels).floor_().clamp_(min=0).minimum(levels - 1) / levels)
    mask = ((255 << (8 - bits)) & 255).to(torch.uint8)
    return x.bitwise_and_(mask.view(-1, 1, 1, 1))


def solarize(x: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Invert the values at or above each image's ``threshold`` (a fraction of the range)."""
    threshold = threshold * _bound(x)
    if x.dtype == torch.uint8 and bool((threshold <= 255).all()):
        # integers at or above t are those at or above ceil(t): compared as uint8, with no wider copy;
        # inverting is xor with 255 where the mask is 1 (0 - 1 = 255 in uint8)
        threshold = threshold.ceil().clamp_(min=0).to(torch.uint8)
        return x.bitwise_xor_((x >= _full(threshold, x)).view(torch.uint8).neg_())
    return x.copy_(torch.where(x >= _full(_per_image(threshold, x.dtype), x), 1.0 - x, x))


def invert(x: torch.Tensor) -> torch.Tensor:
    """The bound minus each value: for uint8, the bits inverted."""
    return x.neg_().add_(1.0) if x.is_floating_point() else x.bitwise_not_()


def _full(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-image ``values`` as a tensor of ``like``'s shape. On a CPU a comparison against a tensor of the
    same shape is an order of magnitude faster than against a broadcast one (or a scalar)."""
    return values.view(-1, *[1] * (like.dim() - 1)).expand_as(like).contiguous()


def affine(x: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """Resample each image with its own ``(2, 3)`` inverse matrix in the grid's normalised coordinates
    (from ``_coefficients``), nearest interpolation and zero fill: torchvision's ``affine``/``rotate`` on
    tensors, for a batch at once."""
    xs, ys = _grid_coordinates(*x.shape[-2:], coef.dtype, x.device)
    # torchvision's _affine_grid: pixel-centred coordinates times the normalised matrix, (x m0 + y m1) + m2
    # for each coordinate, with its products and sums, as a column term plus a row term on contiguous
    # (B, 2, H, W) planes, then viewed as (B, H, W, 2) (several times faster than the product over the
    # whole grid)
    grid = (xs * coef[..., 0:1]).unsqueeze(2) + (ys * coef[..., 1:2]).unsqueeze(3)
    grid += coef[..., 2:3].unsqueeze(3)
    grid = grid.permute(0, 2, 3, 1)
    out = F.grid_sample(x.to(coef.dtype), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    # nearest resampling of whole numbers gives whole numbers: no rounding before the cast back
    return _store_whole(out, x)


@lru_cache(maxsize=16)
def _grid_coordinates(h: int, w: int, dtype: torch.dtype, device: torch.device):
    """Pixel-centred column and row coordinates of ``affine``'s grid."""
    xs = torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w, device=device).to(dtype)
    ys = torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h, device=device).to(dtype)
    return xs, ys


def geometric(x: torch.Tensor, kinds: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Each image's geometric op (``kinds``: its index in ``_GEOMETRIC``) with its signed magnitude, with
    the matrix torchvision's auto-augment classes resample it with."""
    h, w = x.shape[-2:]
    key = (h, w, _float_dtype(x), x.device)
    pairs = zip(kinds.tolist(), magnitude.tolist(), strict=True)
    return affine(x, torch.cat([_coefficients(k, m, *key) for k, m in pairs]))


@lru_cache(maxsize=4096)
def _coefficients(kind: int, magnitude: float, h: int, w: int, dtype: torch.dtype, device: torch.device):
    """``_inverse_matrix`` as ``affine`` takes it, ``(1, 2, 3)``: in ``dtype``, each row divided by half
    the image's width or height, as torchvision's grid does. Made once per op and magnitude, as a tensor:
    joining them is several times faster than making a tensor of the matrices' numbers each time."""
    theta = torch.tensor(_inverse_matrix(kind, magnitude, h, w), dtype=dtype, device=device).view(1, 2, 3)
    return theta / torch.tensor([0.5 * w, 0.5 * h], dtype=dtype, device=device).view(1, 2, 1)


@lru_cache(maxsize=4096)
def _inverse_matrix(kind: int, magnitude: float, h: int, w: int) -> list[float]:
    """The output-to-input matrix of op ``_GEOMETRIC[kind]`` at ``magnitude`` on ``h`` x ``w`` images, from
    torchvision's own helper with the arguments its auto-augment classes give ``affine`` (shears about the
    top-left corner, whole-pixel translations) and ``rotate`` (the angle modulo 360, turned the other way).
    A policy draws its magnitudes from a few bins: ``_coefficients`` keeps each matrix once made."""
    name = _GEOMETRIC[kind]
    if name == "Rotate":
        return _get_inverse_affine_matrix([0.0, 0.0], -(magnitude % 360), [0.0, 0.0], 1.0, [0.0, 0.0])
    shear = math.degrees(math.atan(magnitude))
    translate, shears, centre = {
        "ShearX": ([0.0, 0.0], [shear, 0.0], [-w * 0.5, -h * 0.5]),
        "ShearY": ([0.0, 0.0], [0.0, shear], [-w * 0.5, -h * 0.5]),
        "TranslateX": ([float(int(magnitude)), 0.0], [0.0, 0.0], [0.0, 0.0]),
        "TranslateY": ([0.0, float(int(magnitude))], [0.0, 0.0], [0.0, 0.0]),
    }[name]
    return _get_inverse_affine_matrix(centre, 0.0, translate, 1.0, shears)


_COLOUR = {
    "Brightness": lambda x, m: brightness(x, 1.0 + m),
    "Color": lambda x, m: saturation(x, 1.0 + m),
    "Contrast": lambda x, m: contrast(x, 1.0 + m),
    "Sharpness": lambda x, m: sharpness(x, 1.0 + m),
    "Posterize": posterize,
    "Solarize": solarize,
    "AutoContrast": lambda x, m: autocontrast(x),
    "Equalize": lambda x, m: equalize(x),
    "Invert": lambda x, m: invert(x),
}


def apply_ops(
    x: torch.Tensor, names: Sequence[str], choice: torch.Tensor, magnitude: torch.Tensor
) -> torch.Tensor:
    """Apply op ``names[choice[i]]`` with ``magnitude[i]`` to image ``i``: each op once, on the images
    that drew it (all geometric ops in one resampling); images that drew ``Identity`` are not touched.
    With ``choice`` and ``magnitude`` of shape ``(B, rounds)``, the rounds one after the other."""
    if choice.dim() == 1:
        choice, magnitude = choice[:, None], magnitude[:, None]
    # Sorted by op, the images of each op are a contiguous slice: one gather of the batch in that order,
    # each op writing into a view of its slice, one gather back at the end. Gathering and scattering a few
    # images per op cost more than the ops themselves on CIFAR-sized images.
    group_of, kind_of = _groups(tuple(names), x.device)
    back = None  # x[back[i]] is image i; None while x is in the batch's order
    for r in range(choice.shape[1]):
        # index_select and sort rather than indexing and argsort: the same, with less overhead per call
        group = group_of.index_select(0, choice[:, r])
        counts = torch.bincount(group, minlength=len(names) + 1).tolist()
        if all(n == 0 for g, n in enumerate(counts) if g == 0 or names[g - 1] in _COLOUR):
            continue  # every image drew Identity
        order = torch.sort(group, stable=True).indices
        x = x.index_select(0, order if back is None else back.index_select(0, order))
        sorted_choice = choice[:, r].index_select(0, order)
        sorted_magnitude = magnitude[:, r].index_select(0, order).double()
        start = 0
        for g, n in enumerate(counts):
            part = slice(start, start + n)
            start += n
            if n == 0:
                continue
            if g == 0:
                geometric(x[part], kind_of.index_select(0, sorted_choice[part]), sorted_magnitude[part])
            elif names[g - 1] in _COLOUR:
                _COLOUR[names[g - 1]](x[part], sorted_magnitude[part])
        back = torch.empty_like(order).scatter_(0, order, torch.arange(len(order), device=order.device))
    if back is None:
        return x
    # the last gather makes the result, outside inference mode: a tensor training may use like any other
    with torch.inference_mode(False):
        return x.index_select(0, back)


@lru_cache(maxsize=16)
def _groups(names: tuple[str, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Each op's group (0 for every geometric op: one resampling does them all, else its own) and its
    index in ``_GEOMETRIC`` (-1 for the others)."""
    group = [0 if n in _GEOMETRIC else 1 + k for k, n in enumerate(names)]
    kind = [_GEOMETRIC.index(n) if n in _GEOMETRIC else -1 for n in names]
    return torch.tensor(group, device=device), torch.tensor(kind, device=device)


@lru_cache(maxsize=16)
def _space(transform: type, num_bins: int, h: int, w: int, device: torch.device):
    """The augmentation space of torchvision's ``transform`` class as (op names, magnitudes ``(ops,
    bins)``, signed ``(ops,)``) on ``device``; ops without a magnitude get 0. Built once per image size."""
    names, rows, signed = [], [], []
    for name, (magnitudes_fn, is_signed) in transform._AUGMENTATION_SPACE.items():
        magnitudes = magnitudes_fn(num_bins, h, w)
        names.append(name)
        rows.append(torch.zeros(num_bins) if magnitudes is None else magnitudes.double())
        signed.append(is_signed)
    return tuple(names), torch.stack(rows).double().to(device), torch.tensor(signed, device=device)


@lru_cache(maxsize=16)
def _auto_augment_tables(h: int, w: int, device: torch.device):
    """AutoAugment's CIFAR-10 sub-policies as tensors: (op names with ``Identity`` first, and for each
    policy's two steps ``(25, 2)``: the op, its probability, its magnitude, whether that is signed)."""
    names, mags, signed = _space(AutoAugment, _AUTOAUGMENT_BINS, h, w, device)
    names = ("Identity", *names)  # what an op left out by its probability does
    mags = torch.cat([torch.zeros(1, _AUTOAUGMENT_BINS, dtype=mags.dtype, device=device), mags])
    signed = torch.cat([torch.tensor([False], device=device), signed])
    policies = AutoAugment(AutoAugmentPolicy.CIFAR10)._policies
    ops = torch.tensor([[names.index(op) for op, _, _ in p] for p in policies], device=device)
    probs = torch.tensor([[prob for _, prob, _ in p] for p in policies], device=device)
    bins = torch.tensor([[b or 0 for _, _, b in p] for p in policies], device=device)
    return names, ops, probs, mags[ops, bins], signed[ops]


def _signed(magnitude: torch.Tensor, signed: torch.Tensor) -> torch.Tensor:
    """Negate each signed magnitude with probability 1/2, as torchvision (``rand <= 0.5``)."""
    flip = signed & (torch.rand(magnitude.shape, device=magnitude.device) <= 0.5)
    return torch.where(flip, -magnitude, magnitude)


def rand_augment(x: torch.Tensor, num_ops: int = 2, magnitude: int = 9) -> torch.Tensor:
    """RandAugment (Cubuk et al., 2020): ``num_ops`` rounds, each image drawing one op per round, all at
    magnitude bin ``magnitude`` of ``NUM_BINS``."""
    names, mags, signed = _space(RandAugment, NUM_BINS, *x.shape[-2:], x.device)
    choice = torch.randint(len(names), (len(x), num_ops), device=x.device)  # every round drawn at once
    flat = choice.view(-1)
    chosen = _signed(mags[:, magnitude].index_select(0, flat), signed.index_select(0, flat))
    return apply_ops(x, names, choice, chosen.view_as(choice))


def trivial_augment(x: torch.Tensor) -> torch.Tensor:
    """TrivialAugmentWide (Müller and Hutter, 2021): one op per image at a random magnitude bin."""
    names, mags, signed = _space(TrivialAugmentWide, NUM_BINS, *x.shape[-2:], x.device)
    choice = torch.randint(len(names), (len(x),), device=x.device)
    bins = torch.randint(NUM_BINS, (len(x),), device=x.device)
    return apply_ops(x, names, choice, _signed(mags[choice, bins], signed[choice]))


def auto_augment(x: torch.Tensor) -> torch.Tensor:
    """AutoAugment (Cubuk et al., 2019) with its CIFAR-10 policy: each image draws one of the 25
    sub-policies and applies its two ops, each with the op's probability."""
    names, ops, probs, mags, signed = _auto_augment_tables(*x.shape[-2:], x.device)
    policy = torch.randint(len(ops), (len(x),), device=x.device)
    # both steps drawn at once, (B, 2): an op left out by its probability is Identity (0)
    applied = torch.rand(len(x), 2, device=x.device) <= probs.index_select(0, policy)
    choice = ops.index_select(0, policy) * applied
    magnitude = _signed(mags.index_select(0, policy), signed.index_select(0, policy))
    return apply_ops(x, names, choice, magnitude)


@contextmanager
def _one_cpu_thread(device: torch.device):
    """A policy is some hundred small ops on sub-batches of a few images; on a CPU each parallel region
    waits for every intra-op thread, and when training shares the cores that wait dominates (on a busy
    2-core machine a policy took two orders of magnitude longer with 2 threads than with 1). One thread,
    as in DataLoader workers, for the policy only."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def apply_policy(x: torch.Tensor, policy: str, num_ops: int = 2, magnitude: int = 9) -> torch.Tensor:
    """``policy`` (one of ``POLICIES``) on a batch; ``num_ops`` and ``magnitude`` are RandAugment's."""
    if policy == "none":
        return x
    policies = {
        "randaugment": lambda: rand_augment(x, num_ops, magnitude),
        "trivialaugment": lambda: trivial_augment(x),
        "autoaugment": lambda: auto_augment(x),
    }
    if policy not in policies:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    # In inference mode each of those small ops skips autograd's bookkeeping (about 10% of a policy's time
    # on a CPU); the result is made outside it (or is the batch itself, where every image drew Identity).
    with _one_cpu_thread(x.device), torch.inference_mode():
        return policies[policy]()


def per_image_policy(policy: str, num_ops: int = 2, magnitude: int = 9) -> list:
    """The same policy as torchvision's per-image transform (for the per-image data path)."""
    return {
        "none": [],
        "randaugment": [RandAugment(num_ops=num_ops, magnitude=magnitude, num_magnitude_bins=NUM_BINS)],
        "trivialaugment": [TrivialAugmentWide(num_magnitude_bins=NUM_BINS)],
        "autoaugment": [AutoAugment(AutoAugmentPolicy.CIFAR10)],
    }[policy]
