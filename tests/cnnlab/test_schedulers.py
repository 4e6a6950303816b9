import pytest
import torch

from cnnlab.schedulers import WarmupCosineLR


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
