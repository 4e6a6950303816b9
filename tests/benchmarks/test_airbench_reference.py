"""airbench94's own code, made to run on the CPU in bf16 by benchmarks.airbench_reference: the edits
still apply to the installed package, and the edited code trains in the chosen number format."""

import pytest
import torch

pytest.importorskip("airbench")

from benchmarks import airbench_reference  # noqa: E402


def test_every_edit_applies_to_the_shipped_source_and_the_network_runs_in_bf16_on_the_cpu():
    utils, lib = airbench_reference.load_patched("bfloat16")
    net = lib.make_net94()
    conv = net[2].conv1.weight
    assert conv.dtype == torch.bfloat16 and conv.device.type == "cpu"
    out = net(torch.randn(4, 3, 32, 32, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last))
    assert out.shape == (4, 10) and torch.isfinite(out.float()).all()


def test_lookahead_averages_the_bf16_weights_as_it_does_fp16_ones():
    # airbench's lookahead skips tensors of other dtypes than its own: without the edit, bf16 weights
    # would silently never be averaged
    utils, lib = airbench_reference.load_patched("bfloat16")
    net = lib.make_net94()
    state = utils.LookaheadState(net)
    weight = net[2].conv1.weight
    before = weight.detach().float().clone()
    with torch.no_grad():
        weight.add_(1.0)
    state.update(net, decay=0.5)  # the average of before and after, copied back into the network
    assert torch.allclose(weight.detach().float(), before + 0.5, atol=0.02)


def test_show_lists_the_edits(capsys):
    airbench_reference.main(["--show"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(airbench_reference.SUBSTITUTIONS) and "net.half().cuda()" in "\n".join(lines)
