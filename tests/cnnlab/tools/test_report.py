import shutil
import sys

import pytest
import yaml
from lightning.pytorch.loggers import TensorBoardLogger
from PIL import Image

from cnnlab.cli import main
from cnnlab.model_card import build_model, render, summarize
from cnnlab.sweep_file import TRIAL_FILE
from cnnlab.tools.report import plot_series, read_run, run_folders

slow = pytest.mark.slow  # trains for real (the fit_runs fixture)


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])


def table_rows(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    return [dict(zip(header, row, strict=True)) for row in cells]


@slow
def test_leaderboard_ranks_the_runs_by_best_val_acc_read_from_their_events(fit_runs, tmp_path, capsys):
    logs, best = fit_runs
    markdown, picture = tmp_path / "board.md", tmp_path / "board.png"
    main(["report", str(logs), "--output", str(markdown), "--plot", str(picture)])
    printed = capsys.readouterr().out
    rows = table_rows(printed)
    assert rows == table_rows(markdown.read_text())  # printed and written: the same table
    ranked = sorted(best, key=lambda run: (-best[run], run))  # ties: by name
    assert [row["experiment"] for row in rows] == ranked
    for row in rows:
        assert row["best val acc"] == f"{100 * best[row['experiment']]:.2f}%"  # ModelCheckpoint's best
        assert row["test acc"].endswith("%") and row["wall time"].endswith("s")
        assert float(row["train images/s"].replace(",", "")) > 0
    by_name = {row["experiment"]: row for row in rows}
    assert by_name["mnist_lenet5/version_0"]["epochs"] == "2"
    assert by_name["mnist_lenet5/version_0"]["params"] == "61.7K"  # 61,706 parameters
    assert by_name["mnist_cnn/version_0"]["architecture"] == "mnist_cnn"
    with Image.open(picture) as png:
        assert png.format == "PNG" and png.size[0] > png.size[1] > 300


@slow
def test_unfinished_runs_show_blanks_and_predict_folders_are_left_out(fit_runs, tmp_path, capsys):
    logs = tmp_path / "logs"
    shutil.copytree(fit_runs[0], logs)
    # a run that has logged only a training loss so far
    logger = TensorBoardLogger(str(logs), name="cifar10_resnet18", version=0, default_hp_metric=False)
    logger.log_hyperparams({"arch": "resnet18", "num_classes": 10, "in_channels": 3, "image_size": 32})
    logger.log_metrics({"train/loss": 2.3}, step=49)
    logger.finalize("success")
    # ... and its model card, written when fit starts: the leaderboard's parameter count
    card = render(summarize(build_model("resnet18", 10, 3, 32), (3, 32, 32), "resnet18"))
    (logs / "cifar10_resnet18" / "version_0" / "model_summary.md").write_text(card)
    # a prediction's folder: no training, no checkpoints
    (logs / "mnist_lenet5" / "version_9").mkdir()
    (logs / "mnist_lenet5" / "version_9" / "predictions.csv").write_text("path,predicted\n")
    main(["report", str(logs)])
    rows = table_rows(capsys.readouterr().out)
    assert [row["experiment"] for row in rows][-1] == "cifar10_resnet18/version_0"  # no val acc: last
    assert rows[-1]["best val acc"] == "" and rows[-1]["epochs"] == "" and rows[-1]["params"] == "11.17M"
    assert "mnist_lenet5/version_9" not in [row["experiment"] for row in rows]
    assert (logs / "leaderboard.md").is_file() and (logs / "leaderboard.png").is_file()


@slow
def test_missing_or_empty_folder_is_one_line(tmp_path, capsys):
    for folder in (tmp_path / "missing", tmp_path):
        with pytest.raises(SystemExit) as exit_info:
            main(["report", str(folder)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("cnnlab: error: ") and err.count("\n") == 1


# -- sweeps ---------------------------------------------------------------------------------------------
def sweep_trial(logs, sweep, name, version, config, seed, curve, state="complete", metric="val/acc"):
    """A sweep trial's run folder: its val/acc by epoch as TensorBoard events, and sweep_trial.yaml."""
    logger = TensorBoardLogger(str(logs / sweep), name=name, version=version, default_hp_metric=False)
    for epoch, acc in enumerate(curve):
        logger.log_metrics({"val/acc": acc, "val/loss": 1 - acc, "epoch": epoch}, step=10 * (epoch + 1))
    logger.finalize("success")
    options = [arg for key, value in config.items() for arg in (f"--{key}", value)]
    record = {"sweep": sweep, "study": sweep, "trial": 0, "configuration": config, "seed": seed,
              "metric": metric, "direction": "maximize" if metric == "val/acc" else "minimize",
              "command": ["fit", "--config", "mnist_cnn", *options], "state": state}  # fmt: skip
    (logs / sweep / name / f"version_{version}" / TRIAL_FILE).write_text(yaml.safe_dump(record))


# best val/acc of each trial (values exact in float32, as TensorBoard stores them)
CURVES = {
    "lenet5": {0: [0.25, 0.5], 1: [0.75, 0.625], 2: [0.5, 0.875]},  # bests 0.5, 0.75, 0.875
    "simplecnn": {0: [0.5, 0.625], 1: [0.9375, 0.75]},  # bests 0.625, 0.9375
    "mnist_cnn": {0: [0.25, 0.125]},  # one trial
}


@pytest.fixture
def sweep_logs(tmp_path):
    logs = tmp_path / "logs"
    for arch, curves in CURVES.items():
        for seed, curve in curves.items():
            sweep_trial(logs, "zoo", f"arch={arch}_seed={seed}", 0, {"model.arch": arch}, seed, curve)
    # a killed worker's attempt, never completed: not counted
    sweep_trial(logs, "zoo", "arch=mnist_cnn_seed=0", 1, {"model.arch": "mnist_cnn"}, 0, [1.0], "running")
    return logs


def by_hand(values: list[float]) -> str:
    """mean ± sample standard deviation in percent, computed without the statistics module."""
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{100 * mean:.2f}%"
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{100 * mean:.2f} ± {100 * std:.2f}%"


def test_a_sweeps_trials_are_grouped_by_configuration_with_mean_std_and_n(sweep_logs, tmp_path, capsys):
    for logs in (sweep_logs, sweep_logs / "zoo"):  # the logs folder, or the sweep's own
        main(["report", str(logs), "--output", str(tmp_path / "board.md"), "--plot", str(tmp_path / "b.png")])
        printed = capsys.readouterr().out
        section = printed.split("## Runs")[0]
        rows = table_rows(section)
        assert [row["configuration"] for row in rows] == ["arch=simplecnn", "arch=lenet5", "arch=mnist_cnn"]
        bests = {arch: [max(c) for c in curves.values()] for arch, curves in CURVES.items()}
        for row in rows:
            arch = row["configuration"].removeprefix("arch=")
            assert row["n"] == str(len(bests[arch]))
            assert row["best val/acc: mean ± std"] == by_hand(bests[arch])
            assert row["epochs"] == "2"
        assert "## Sweep zoo: 3 configurations, 6 completed trials" in section
        assert "    cnnlab fit --config mnist_cnn --model.arch simplecnn" in section
        assert len(table_rows(printed.split("## Runs")[1])) == 7  # every run, the killed attempt too
        assert section in (tmp_path / "board.md").read_text()


def test_a_sweep_on_another_metric_is_ranked_by_it(tmp_path, capsys):
    logs = tmp_path / "logs"
    sweep_trial(logs, "loss", "a", 0, {"model.arch": "a"}, 0, [0.5, 0.75], metric="val/loss")  # loss 0.25
    sweep_trial(logs, "loss", "b", 0, {"model.arch": "b"}, 0, [0.875], metric="val/loss")  # loss 0.125
    main(["report", str(logs)])
    rows = table_rows(capsys.readouterr().out.split("## Runs")[0])
    assert [(row["configuration"], row["best val/loss: mean ± std"]) for row in rows] == [
        ("arch=b", "0.125"),
        ("arch=a", "0.25"),
    ]


def test_the_plot_draws_each_configurations_mean_curve_and_its_spread(sweep_logs):
    runs = [read_run(folder, sweep_logs) for folder in run_folders(sweep_logs)]
    series = {s.label: s for s in plot_series(runs)}
    lenet = series["zoo: arch=lenet5 (n=3)"]
    curves = list(CURVES["lenet5"].values())
    for epoch in (0, 1):
        values = [c[epoch] for c in curves]
        mean = sum(values) / 3
        assert lenet.acc[epoch] == pytest.approx(mean)
        assert lenet.std[epoch] == pytest.approx((sum((v - mean) ** 2 for v in values) / 2) ** 0.5)
    assert lenet.epochs == [1, 2] and series["zoo: arch=mnist_cnn (n=1)"].std == [0.0, 0.0]
    assert len(series) == 3  # configurations, not runs; the unfinished attempt is left out
