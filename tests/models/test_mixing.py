"""Mixup and CutMix of training batches, and the optimizer group without weight decay."""

import pytest
import torch
import torch.nn as nn

from cnnlab.models import DistillationClassifier, ImageClassifier
from cnnlab.models.distill import distillation_loss
from cnnlab.models.errors import ModelError
from tests.checkpoints import make_checkpoint
from tests.cli_args import on_data, recipe, run_main


def batch(n: int = 16, classes: int = 10, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, size, size, generator=g), torch.randint(0, classes, (n,), generator=g)


def classifier(**kwargs) -> ImageClassifier:
    torch.manual_seed(0)
    return ImageClassifier("simplecnn", **kwargs)


def test_mixup_mixes_each_image_with_its_neighbour_and_targets_sum_to_one():
    x, y = batch()
    model = classifier(mixup_alpha=0.4)
    torch.manual_seed(1)
    mixed, targets = model.mix(x, y)
    assert targets.shape == (16, 10) and torch.allclose(targets.sum(1), torch.ones(16))
    own = targets.gather(1, y[:, None])[:, 0]  # the weight of each image's own label
    differ = y != y.roll(1)
    lam = own[differ][0]
    assert 0 < lam < 1 and torch.allclose(own[differ], lam.expand(int(differ.sum())))
    assert torch.allclose(mixed, lam * x + (1 - lam) * x.roll(1, 0), atol=1e-6)


def test_cutmix_pastes_a_box_whose_area_is_the_neighbours_weight():
    x, y = batch()
    model = classifier(cutmix_alpha=1.0)
    torch.manual_seed(3)
    mixed, targets = model.mix(x, y)
    assert torch.allclose(targets.sum(1), torch.ones(16))
    from_neighbour = (mixed == x.roll(1, 0)).all(dim=1) & (mixed != x).any(dim=1)
    assert from_neighbour.any()
    assert ((mixed == x) | (mixed == x.roll(1, 0))).all()  # every pixel is one image's or the other's
    share = from_neighbour.float().mean(dim=(1, 2))
    differ = y != y.roll(1)
    own = targets.gather(1, y[:, None])[:, 0]
    assert torch.allclose(own[differ], 1 - share[differ], atol=1e-6)


@pytest.mark.parametrize(("switch", "cutmix"), [(0.0, False), (1.0, True)])
def test_the_switch_probability_picks_cutmix_or_mixup(switch, cutmix):
    x, y = batch()
    model = classifier(mixup_alpha=1.0, cutmix_alpha=1.0, mix_switch_prob=switch)
    for seed in range(5):
        torch.manual_seed(seed)
        mixed, _ = model.mix(x, y)
        pasted = ((mixed == x) | (mixed == x.roll(1, 0))).all()
        assert bool(pasted) == cutmix


def test_mix_prob_zero_or_no_alpha_leaves_the_batch_alone():
    x, y = batch()
    for model in (classifier(mixup_alpha=1.0, mix_prob=0.0), classifier()):
        mixed, targets = model.mix(x, y)
        assert mixed is x and targets is y


def test_the_training_loss_uses_soft_targets_with_label_smoothing_and_train_acc_the_labels(monkeypatch):
    x, y = batch(n=8)
    model = classifier(mixup_alpha=0.4, cutmix_alpha=1.0, label_smoothing=0.1)
    monkeypatch.setattr(model, "_logging_step", lambda: False)
    torch.manual_seed(5)
    loss = model.training_step((x, y), 0)
    torch.manual_seed(5)
    mixed, targets = model.mix(x, y)
    logits = model(mixed)
    smoothed = targets * 0.9 + 0.1 / 10
    assert loss.item() == pytest.approx(-(smoothed * logits.log_softmax(1)).sum(1).mean().item(), rel=1e-5)
    expected_acc = (logits.argmax(1) == y).float().mean()
    assert model.train_acc.compute().item() == pytest.approx(expected_acc.item())


def test_distillation_trains_on_the_mixed_batch_with_the_teacher_seeing_it_too(tmp_path, monkeypatch):
    teacher = make_checkpoint(tmp_path / "teacher.ckpt", "simplecnn", in_channels=3, image_size=32)
    torch.manual_seed(0)
    model = DistillationClassifier(teacher=str(teacher), arch="simplecnn", mixup_alpha=1.0, alpha=0.5)
    model.setup("fit")
    monkeypatch.setattr(model, "_logging_step", lambda: False)
    x, y = batch(n=8)
    torch.manual_seed(2)
    loss = model.training_step((x, y), 0)
    torch.manual_seed(2)
    mixed, targets = model.mix(x, y)
    assert targets.ndim == 2
    expected = distillation_loss(model(mixed), model.teacher(mixed), targets, 4.0, 0.5)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def norm_and_bias_names(model: nn.Module) -> set[str]:
    names = set()
    for module_name, module in model.named_modules():
        for name, _ in module.named_parameters(recurse=False):
            if isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)) or name == "bias":
                names.add(f"{module_name}.{name}")
    return names


SGD = {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}}
ADAMW = {"class_path": "torch.optim.AdamW", "init_args": {"lr": 1e-3, "weight_decay": 0.05}}


@pytest.mark.parametrize(
    ("arch", "optimizer"),
    [("resnet20", SGD), ("resnet20", ADAMW), ("vit_tiny", ADAMW)],
    ids=["resnet20-sgd", "resnet20-adamw", "vit_tiny-adamw"],  # batch norm; layer norm
)
def test_the_no_decay_group_holds_exactly_the_norm_layers_and_biases(arch, optimizer):
    model = ImageClassifier(arch, optimizer=optimizer, no_weight_decay_norm_bias=True)
    decay, exempt = model.configure_optimizers().param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    expected = norm_and_bias_names(model)
    assert {names[id(p)] for p in exempt["params"]} == expected
    assert {names[id(p)] for p in decay["params"]} == set(names.values()) - expected
    assert any(".bn" in n or "norm" in n for n in expected) and any(n.endswith("bias") for n in expected)
    assert exempt["weight_decay"] == 0.0 and decay["weight_decay"] == optimizer["init_args"]["weight_decay"]
    plain = ImageClassifier(arch, optimizer=optimizer).configure_optimizers()
    assert len(plain.param_groups) == 1


@pytest.mark.parametrize("no_decay", [False, True])
def test_norm_lr_scale_speeds_up_the_norm_layers_with_the_same_decay_per_step(no_decay):
    # airbench94's bias_scaler: batch-norm shifts at 64x the learning rate, their weight decay divided by
    # 64 so that each step shrinks them by the same share as every other weight
    model = ImageClassifier("airbench", optimizer=SGD, norm_lr_scale=64.0, no_weight_decay_norm_bias=no_decay)
    groups = model.configure_optimizers().param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    norms = {n for n in names.values() if ".layers." in n and n.rsplit(".", 2)[-2] in ("2", "5")}
    scaled = [g for g in groups if g["lr"] != SGD["init_args"]["lr"]]
    assert len(scaled) == 1 and {names[id(p)] for p in scaled[0]["params"]} == norms
    assert scaled[0]["lr"] == pytest.approx(64 * 0.1)
    if no_decay:
        assert scaled[0]["weight_decay"] == 0.0
    else:
        assert scaled[0]["lr"] * scaled[0]["weight_decay"] == pytest.approx(0.1 * 5e-4)
    rest = {names[id(p)] for g in groups if g is not scaled[0] for p in g["params"]}
    assert rest == set(names.values()) - norms and "model.whiten.bias" in rest


def test_norm_lr_scale_is_checked():
    with pytest.raises(ModelError, match="--model.norm_lr_scale must be above 0"):
        ImageClassifier("airbench", norm_lr_scale=0)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("mixup_alpha", -0.2, "--model.mixup_alpha must be 0 (off) or more, got -0.2"),
        ("cutmix_alpha", -1.0, "--model.cutmix_alpha must be 0 (off) or more, got -1.0"),
        ("mix_prob", 1.5, "--model.mix_prob must be a probability from 0 to 1, got 1.5"),
        ("mix_switch_prob", -0.1, "--model.mix_switch_prob must be a probability from 0 to 1, got -0.1"),
    ],
)
def test_bad_mixing_options_are_refused(option, value, message):
    with pytest.raises(ModelError, match=message.replace(".", r"\.").replace("(", r"\(").replace(")", r"\)")):
        ImageClassifier("lenet5", **{option: value})


def test_a_bad_mixing_option_on_the_command_line_is_one_line(cifar_root, in_tmp, capsys):
    args = ["fit", *recipe("cifar10_resnet20"), *on_data(cifar_root), "--model.mixup_alpha", "-1"]
    code, err = run_main(args, capsys)
    assert code == 2 and err == "cnnlab: error: --model.mixup_alpha must be 0 (off) or more, got -1.0"
