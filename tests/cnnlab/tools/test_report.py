import shutil
import sys

import pytest
from lightning.pytorch.loggers import TensorBoardLogger
from PIL import Image

from cnnlab.cli import main
from cnnlab.model_card import build_model, render, summarize

pytestmark = pytest.mark.slow  # trains for real or starts processes


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["cnnlab"])


def table_rows(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    return [dict(zip(header, row, strict=True)) for row in cells]


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


def test_missing_or_empty_folder_is_one_line(tmp_path, capsys):
    for folder in (tmp_path / "missing", tmp_path):
        with pytest.raises(SystemExit) as exit_info:
            main(["report", str(folder)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("cnnlab: error: ") and err.count("\n") == 1
