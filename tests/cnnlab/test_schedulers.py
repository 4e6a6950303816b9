import pytest
import torch

from cnnlab.schedulers import TriangularLR, WarmupCosineLR


def lrs(steps: int, **kwargs) -> list[float]:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = WarmupCosineLR(optimizer, total_steps=steps, **kwargs)
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_linear_warmup_then_cosine_to_the_floor():
    curve = lrs(100, warmup=0.1, min_lr_ratio=0.1)
    assert curve[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert curve[10] == pytest.approx(1.0)
    assert curve[55] == pytest.approx(0.1 + 0.9 * 0.5, abs=0.02)  # half way through the cosine
    assert curve[-1] == pytest.approx(0.1, abs=0.01)
    assert all(a >= b for a, b in zip(curve[10:], curve[11:], strict=False))


def test_warmup_in_steps_and_a_clear_error_without_a_length():
    assert lrs(20, warmup=4)[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    with pytest.raises(ValueError, match="total_steps"):
        WarmupCosineLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0))


def triangle(steps: int, groups=(1.0,), **kwargs) -> list[list[float]]:
    params = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in groups]
    optimizer = torch.optim.SGD(params, lr=1.0)
    scheduler = TriangularLR(optimizer, total_steps=steps, **kwargs)
    out = []
    for _ in range(steps + 1):
        out.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return out


def test_the_triangle_rises_to_the_peak_and_falls_to_the_end_as_airbench94s():
    # airbench94's 476 steps: 0.2 at the start, 1 at step int(0.23 * 476) = 109, 0.07 after the last step
    curve = [lrs[0] for lrs in triangle(476)]
    assert curve[0] == pytest.approx(0.2)
    assert curve[109] == pytest.approx(1.0) and max(curve) == pytest.approx(1.0)
    assert curve[54] == pytest.approx(0.2 + 0.8 * 54 / 109)
    assert curve[476] == pytest.approx(0.07)
    assert curve[300] == pytest.approx(1 - 0.93 * (300 - 109) / (476 - 109))


def test_the_triangle_keeps_the_ratio_between_parameter_groups():
    # batch-norm shifts at 64x the learning rate stay at 64x all along (OneCycleLR's max_lr would not)
    for low, high in triangle(50, groups=(0.5, 32.0)):
        assert high == pytest.approx(64 * low)


def test_the_triangle_needs_a_length_and_a_peak_inside_the_run():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.raises(ValueError, match="total_steps"):
        TriangularLR(optimizer)
    with pytest.raises(ValueError, match="peak"):
        TriangularLR(optimizer, total_steps=10, peak=1.5)
