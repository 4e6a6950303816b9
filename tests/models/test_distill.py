import math
import sys

import pytest
import torch
import torch.nn.functional as F

from cnnlab.lightning_cli import CNNLabCLI
from cnnlab.models import DistillationClassifier
from cnnlab.models.distill import distillation_loss
from tests.checkpoints import make_checkpoint
from tests.cli_args import QUIET, on_data, recipe, run_main
from tests.cnnlab.test_cli import scalars

STUDENT = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.3, -0.7]], dtype=torch.float64)
TEACHER = torch.tensor([[1.5, 0.2, -0.4], [-1.0, 2.0, 0.1]], dtype=torch.float64)
TARGETS = torch.tensor([0, 2])


def by_hand(student, teacher, targets, T, alpha) -> float:
    """The loss from its definition, with explicit sums over plain Python floats."""

    def softmax(row, t):
        exps = [math.exp(v / t) for v in row]
        return [e / sum(exps) for e in exps]

    kl = ce = 0.0
    for s_row, t_row, y in zip(student.tolist(), teacher.tolist(), targets.tolist(), strict=True):
        p, q = softmax(t_row, T), softmax(s_row, T)
        kl += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
        ce -= math.log(softmax(s_row, 1.0)[y])
    n = len(targets)
    return alpha * kl / n * T**2 + (1 - alpha) * ce / n


@pytest.mark.parametrize("T, alpha", [(1.0, 0.5), (4.0, 0.9), (2.5, 0.0), (10.0, 1.0)])
def test_distillation_loss_matches_a_hand_computation(T, alpha):
    loss = distillation_loss(STUDENT, TEACHER, TARGETS, temperature=T, alpha=alpha)
    assert loss.item() == pytest.approx(by_hand(STUDENT, TEACHER, TARGETS, T, alpha), rel=1e-9)


def test_alpha_zero_is_cross_entropy_and_a_perfect_student_has_no_soft_loss():
    assert distillation_loss(STUDENT, TEACHER, TARGETS, 4.0, 0.0).item() == pytest.approx(
        F.cross_entropy(STUDENT, TARGETS).item()
    )
    assert distillation_loss(TEACHER, TEACHER, TARGETS, 4.0, 1.0).item() == pytest.approx(0.0, abs=1e-6)


@pytest.fixture
def quiet_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])


def distill_args(mnist_root, teacher, *extra):
    teacher_args = ["--model.teacher", str(teacher)]
    data = on_data(mnist_root, batch_size=50)
    return ["fit", *recipe("mnist_distill_cnn_to_lenet5"), *teacher_args, *data, *QUIET, *extra]


@pytest.mark.slow
def test_cli_distillation_trains_the_student_only_and_checkpoints_load_as_the_student(
    mnist_root, in_tmp, quiet_argv
):
    teacher_ckpt = make_checkpoint(in_tmp / "teacher.ckpt", arch="mnist_cnn")
    teacher_before = torch.load(teacher_ckpt, weights_only=True)["state_dict"]
    cli = CNNLabCLI(
        args=distill_args(
            mnist_root, teacher_ckpt, "--trainer.max_epochs", "1", "--trainer.log_every_n_steps", "2"
        )
    )
    model = cli.model
    assert isinstance(model, DistillationClassifier) and model.hparams.arch == "lenet5"
    # The teacher is frozen: same weights, no gradients, eval mode, not among the optimized parameters.
    for name, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before["model." + name]), name
    assert not model.teacher.training
    assert all(not p.requires_grad for p in model.teacher.parameters())
    optimized = {id(p) for group in cli.trainer.optimizers[0].param_groups for p in group["params"]}
    assert optimized == {id(p) for p in model.model.parameters()}
    assert "test/acc" in cli.trainer.callback_metrics
    run = in_tmp / "lightning_logs" / "mnist_distill_cnn_to_lenet5" / "version_0"
    logged = scalars(run)
    for tag in ("train/kd_loss", "train/ce_loss", "train/loss", "val/acc"):
        assert tag in logged, tag

    # The checkpoint holds the student alone and tests without the teacher file.
    last = run / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)["state_dict"]
    assert state and not any(k.startswith("teacher") for k in state)
    teacher_ckpt.unlink()
    tested = CNNLabCLI(
        args=["test", *recipe("mnist_lenet5"), *on_data(mnist_root), *QUIET, "--ckpt_path", str(last)]
    )
    assert tested.model.hparams.arch == "lenet5" and "test/acc" in tested.trainer.callback_metrics
    assert DistillationClassifier.load_from_checkpoint(last, weights_only=True).hparams.alpha == 0.9


@pytest.mark.slow
def test_teacher_changes_the_student_and_alpha_zero_is_the_plain_student(mnist_root, in_tmp, quiet_argv):
    teacher = make_checkpoint(in_tmp / "teacher.ckpt", arch="mnist_cnn", seed=3)

    one_epoch = ["--trainer.max_epochs", "1", "--test_after_fit", "false"]
    no_files = ["--trainer.logger", "false", "--trainer.enable_checkpointing", "false"]

    def student(alpha: str):
        cli = CNNLabCLI(args=distill_args(mnist_root, teacher, *one_epoch, "--model.alpha", alpha, *no_files))
        return cli.model.model.state_dict()

    data = [*on_data(mnist_root, batch_size=50), *QUIET]
    args = ["fit", *recipe("mnist_lenet5"), *data, *one_epoch, *no_files]
    plain = CNNLabCLI(args=args).model.model.state_dict()
    without, with_teacher = student("0"), student("0.9")
    assert all(torch.allclose(without[k], plain[k]) for k in plain)  # same seed, same steps
    assert not all(torch.allclose(with_teacher[k], plain[k]) for k in plain)


@pytest.mark.slow
@pytest.mark.parametrize(
    "teacher, message",
    [
        ("missing.ckpt", "checkpoint missing.ckpt does not exist"),
        ("foreign.ckpt", "is not a cnnlab checkpoint"),
        ("garbage.ckpt", "garbage.ckpt is not a PyTorch checkpoint"),
        ("cifar.ckpt", "teacher cifar.ckpt has num_classes=100 but the student has num_classes=10"),
    ],
)
def test_bad_teacher_is_one_line(teacher, message, mnist_root, in_tmp, quiet_argv, capsys):
    torch.save({"state_dict": {"w": torch.zeros(1)}}, in_tmp / "foreign.ckpt")
    (in_tmp / "garbage.ckpt").write_text("not a checkpoint")
    make_checkpoint(in_tmp / "cifar.ckpt", num_classes=100)
    code, err = run_main(distill_args(mnist_root, teacher, "--trainer.max_epochs", "1"), capsys)
    last = err.splitlines()[-1]
    assert code == 2 and last.startswith("cnnlab: error: ") and message in last
