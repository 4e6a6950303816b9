"""The batched policies and random erasing: torchvision's ops and semantics, a draw per image."""

import pytest
import torch
from torchvision.transforms import v2

from cnnlab.datamodules import CIFAR10DataModule
from cnnlab.datamodules.augment import augment_batch, random_erasing
from cnnlab.datamodules.errors import DataError
from cnnlab.datamodules.policies import POLICIES, apply_ops, apply_policy
from tests.cli_args import on_data, recipe, run_main

POLICY_NAMES = [p for p in POLICIES if p != "none"]


def photo_like(n: int = 1, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Smooth colour gradients with noise: every op (equalize, autocontrast, sharpness) has work to do."""
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 1, size)
    base = torch.stack([ramp[None, :].expand(size, size), ramp[:, None].expand(size, size), ramp.flip(0)[None]
                        .expand(size, size)])  # fmt: skip
    images = 40 + 150 * base[None] + 30 * torch.rand(n, 3, size, size, generator=g)
    return images.round().clamp(0, 255).to(torch.uint8)


def as_dtype(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return x if dtype == torch.uint8 else x.float() / 255


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32], ids=["uint8", "float"])
@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_a_policy_keeps_shape_dtype_and_range_and_draws_per_image(policy, dtype):
    torch.manual_seed(0)
    x = as_dtype(photo_like().expand(64, -1, -1, -1).contiguous(), dtype)  # one image, 64 times
    out = apply_policy(x, policy)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= (255 if dtype == torch.uint8 else 1.0)
    distinct = {tuple(img.flatten()[::7].tolist()) for img in out}
    assert len(distinct) >= 16, f"{policy}: only {len(distinct)} different results from 64 copies"


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_a_policy_is_reproducible_with_a_fixed_seed(policy):
    x = photo_like(16)
    torch.manual_seed(7)
    first = apply_policy(x, policy, num_ops=2, magnitude=15)
    torch.manual_seed(7)
    again = apply_policy(x, policy, num_ops=2, magnitude=15)
    torch.manual_seed(8)
    other = apply_policy(x, policy, num_ops=2, magnitude=15)
    assert torch.equal(first, again) and not torch.equal(first, other)


# (op, signed magnitude) as torchvision's policies draw them; magnitudes away from the ones torchvision
# special-cases (rotation by 0, 90, 180 or 270 degrees: exact flips instead of resampling).
OPS = [
    ("Identity", 0.0),
    ("ShearX", 0.3),
    ("ShearX", -0.99),
    ("ShearY", 0.2),
    ("TranslateX", 9.7),
    ("TranslateX", -14.5),
    ("TranslateY", -6.0),
    ("Rotate", 27.0),
    ("Rotate", -121.5),
    ("Brightness", 0.6),
    ("Brightness", -0.9),
    ("Color", 0.9),
    ("Color", -0.45),
    ("Contrast", 0.33),
    ("Contrast", -0.7),
    ("Sharpness", 0.9),
    ("Sharpness", -0.99),
    ("Posterize", 2.0),
    ("Posterize", 5.0),
    ("Solarize", 0.4),
    ("Solarize", 0.3),  # 76.5: uint8 images compare with ceil(76.5)
    ("AutoContrast", 0.0),
    ("Equalize", 0.0),
    ("Invert", 0.0),
]


def torchvision_op(image: torch.Tensor, name: str, magnitude: float) -> torch.Tensor:
    """What torchvision's auto-augment classes do for ``name`` at ``magnitude``."""
    policy = v2.TrivialAugmentWide()
    return policy._apply_image_or_video_transform(
        image, name, magnitude, interpolation=policy.interpolation, fill=policy._fill
    )


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32], ids=["uint8", "float"])
def test_each_op_computes_what_torchvision_computes(dtype):
    images = as_dtype(photo_like(len(OPS), seed=1), dtype)
    names = sorted({name for name, _ in OPS})
    choice = torch.tensor([names.index(name) for name, _ in OPS])
    magnitude = torch.tensor([m for _, m in OPS], dtype=torch.float64)
    ours = apply_ops(images, names, choice, magnitude)  # every image its own op, in one batch
    for i, (name, m) in enumerate(OPS):
        expected = torchvision_op(images[i], name, m)
        diff = (ours[i].double() - expected.double()).abs()
        if dtype == torch.uint8:  # the same arithmetic up to float rounding before truncation
            assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01, f"{name} {m}"
        else:
            assert diff.max() < 1e-5, f"{name} {m}"
        if name != "Identity":
            assert not torch.equal(ours[i], images[i]), f"{name} {m} left the image as it was"


def test_random_erasing_draws_a_box_per_image_as_torchvision():
    torch.manual_seed(0)
    x = torch.ones(400, 3, 32, 32)
    out = random_erasing(x, p=0.5, value=0.0)
    erased = (out == 0).all(dim=1)  # (B, H, W): pixels erased in every channel
    fraction = erased.float().mean(dim=(1, 2))
    hit = fraction > 0
    assert out.shape == x.shape and torch.equal(out == 0, erased[:, None].expand_as(out))
    assert 0.4 < hit.float().mean() < 0.6
    # scale (0.02, 0.33) of the area; height and width are rounded each
    assert fraction[hit].min() >= 0.01 and fraction[hit].max() <= 0.36
    rows, cols = erased.any(dim=2), erased.any(dim=1)
    assert torch.equal(erased.sum((1, 2)), rows.sum(1) * cols.sum(1))  # one rectangle
    assert len({(r, c) for r, c in zip(rows.sum(1).tolist(), cols.sum(1).tolist(), strict=True)}) > 20
    assert torch.equal(random_erasing(x, p=0.0), x)


def test_the_data_module_applies_its_policy_before_normalisation_and_erasing_after(monkeypatch):
    seen = {}

    def record(x, policy, num_ops, magnitude):
        seen["dtype"], seen["args"] = x.dtype, (policy, num_ops, magnitude)
        return x

    monkeypatch.setattr("cnnlab.datamodules.augment.apply_policy", record)
    dm = CIFAR10DataModule(auto_augment="randaugment", randaugment_n=3, randaugment_m=12, random_erasing=1.0)
    dm.trainer = type("Trainer", (), {"training": True, "predicting": False})()
    images, labels = dm.on_after_batch_transfer((photo_like(8), torch.arange(8)), 0)
    assert seen == {"dtype": torch.uint8, "args": ("randaugment", 3, 12)}
    assert images.dtype == torch.float32 and (images == 0).all(dim=1).any(dim=(1, 2)).all()
    assert torch.equal(labels, torch.arange(8))
    assert augment_batch(photo_like(2), policy="none").equal(photo_like(2))


def test_the_per_image_path_uses_torchvisions_policy_and_erasing():
    dm = CIFAR10DataModule(fast=False, auto_augment="autoaugment", random_erasing=0.25)
    kinds = [type(t) for t in dm.train_transform().transforms]
    assert v2.AutoAugment in kinds and kinds[-1] is v2.RandomErasing
    assert kinds.index(v2.AutoAugment) < kinds.index(v2.ToImage) < kinds.index(v2.Normalize)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("auto_augment", "cutmix", "--data.auto_augment must be one of none, randaugment"),
        ("randaugment_m", 31, "--data.randaugment_m must be a magnitude bin from 0 to 30, got 31"),
        ("randaugment_n", -1, "--data.randaugment_n must be 0 or more, got -1"),
        ("random_erasing", 1.5, "--data.random_erasing must be a probability from 0 to 1, got 1.5"),
    ],
)
def test_bad_policy_options_are_refused(option, value, message):
    with pytest.raises(DataError, match=message.replace(".", r"\.")):
        CIFAR10DataModule(**{option: value})


def test_a_bad_policy_on_the_command_line_is_one_line(cifar_root, in_tmp, capsys):
    args = ["fit", *recipe("cifar10_resnet20"), *on_data(cifar_root), "--data.auto_augment", "autoaug"]
    code, err = run_main(args, capsys)
    assert code == 2 and err.count("\n") == 0
    assert err.startswith("cnnlab: error: --data.auto_augment must be one of") and "'autoaug'" in err
