import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.cli import main
from cnnlab.model_card import count_macs, summarize
from cnnlab.models import get_model


def test_lenet5_receptive_field_and_macs_match_the_hand_computation():
    # LeNet-5 on 1x28x28: C1 pads by 2, so it sees a 32x32 image.
    #   C1 conv 5x5 s1, 6 maps 28x28:  r = 1 + 4*1 = 5,   j = 1;  MACs = 6*28*28 * (1*5*5) = 117,600
    #   S2 avg pool 2x2 s2, 6x14x14:   r = 5 + 1*1 = 6,   j = 2
    #   C3 conv 5x5 s1, 16 maps 10x10: r = 6 + 4*2 = 14,  j = 2;  MACs = 16*10*10 * (6*5*5) = 240,000
    #   S4 avg pool 2x2 s2, 16x5x5:    r = 14 + 1*2 = 16, j = 4
    #   Flatten (5x5 positions, one window over the map): r = 16 + (5-1)*4 = 32, the whole padded image
    #   C5 linear 400->120: 48,000; F6 120->84: 10,080; output 84->10: 840 MACs
    model = get_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    summary = summarize(model, (1, 28, 28))
    rows = {layer.name: layer for layer in summary.layers}
    expected = {
        "features.0": (5, 1, 117_600),
        "features.2": (6, 2, 0),
        "features.3": (14, 2, 240_000),
        "features.5": (16, 4, 0),
        "classifier.0": (32, None, 0),
        "classifier.1": (32, None, 48_000),
        "classifier.3": (32, None, 10_080),
        "classifier.5": (32, None, 840),
    }
    assert {name: (rows[name].rf, rows[name].jump, rows[name].macs) for name in expected} == expected
    assert rows["features.0"].shape == (6, 28, 28) and rows["features.5"].shape == (16, 5, 5)
    assert summary.macs == 117_600 + 240_000 + 48_000 + 10_080 + 840
    assert summary.rf == 32
    assert summary.params == 61_706 == sum(layer.params for layer in summary.layers)
    assert [layer.name for layer in summary.layers][:3] == ["features.0", "features.1", "features.2"]


def flop_counter_macs(model, shape):
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(1, *shape))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("arch", ["lenet5", "resnet20", "mobilenetv2", "vit_tiny"])
def test_totals_equal_torchs_flop_counter_and_rows_add_up(arch):
    model = get_model(arch, num_classes=10, in_channels=3, image_size=32)
    summary = summarize(model, (3, 32, 32))
    assert summary.macs == flop_counter_macs(model, (3, 32, 32)) == count_macs(model, (3, 32, 32))
    assert sum(layer.macs for layer in summary.layers) == summary.macs
    # every parameter appears in exactly one row (MultiheadAttention's out_proj runs functionally)
    assert sum(layer.params for layer in summary.layers) == summary.params


def test_residual_branches_take_the_larger_field_and_global_pooling_covers_the_map():
    # resnet18, block layer2.0 on layer1's output (r=11, j=1):
    #   main branch: conv1 3x3 s2 -> r = 11 + 2*1 = 13, j = 2; conv2 3x3 -> r = 13 + 2*2 = 17
    #   shortcut:    downsample conv 1x1 s2 -> r = 11, j = 2
    #   the sum (and the ReLU module after it) takes the larger field: 17
    summary = summarize(get_model("resnet18", num_classes=10), (3, 32, 32))
    rows = [(layer.name, layer.rf, layer.jump) for layer in summary.layers]
    block = [row for row in rows if row[0].startswith("layer2.0.")]
    assert ("layer2.0.conv1", 13, 2) in block and ("layer2.0.conv2", 17, 2) in block
    assert ("layer2.0.downsample.0", 11, 2) in block
    assert block[-1] == ("layer2.0.relu", 17, 2)
    # resnet20 pools functionally (F.adaptive_avg_pool2d): its last conv sees r=81 with jump 4 on an
    # 8x8 map; one window over the map adds (8-1)*4.
    summary = summarize(get_model("resnet20", num_classes=10), (3, 32, 32))
    assert summary.layers[-3].name == "layers.8.conv2" and summary.layers[-3].rf == 81
    assert summary.layers[-1].name == "fc" and summary.rf == 81 + 7 * 4 and summary.jump is None


def test_summary_command_prints_the_card(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])
    main(["summary", "--model.arch", "lenet5", "--data.in_channels", "1", "--data.image_size", "28"])
    out = capsys.readouterr().out
    assert "| features.3" in out and "240,000" in out
    assert "parameters: 61,706 (61,706 trainable)" in out
    assert "multiply-accumulates per image: 416,520" in out
    assert "receptive field of the output: 32 pixels" in out


def test_summary_reads_the_recipe(capsys):
    main(["summary", "--config", "experiments/mnist_lenet5.yaml"])
    assert "lenet5, input 1x28x28" in capsys.readouterr().out  # MNIST's shape, from the data module


def test_unknown_architecture_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["summary", "--model.arch", "resnet1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error: unknown architecture 'resnet1'") and err.count("\n") == 1


@pytest.mark.slow
def test_fit_writes_the_model_card_to_the_run_folder(fit_runs):
    logs, _ = fit_runs
    card = (logs / "mnist_lenet5" / "version_0" / "model_summary.md").read_text()
    assert card.startswith("## lenet5, input 1x28x28")
    assert "parameters: 61,706" in card and "multiply-accumulates per image: 416,520" in card
