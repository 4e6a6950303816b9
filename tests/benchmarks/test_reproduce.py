"""benchmarks.reproduce: a recorded result's command run again, and both figures side by side."""

import pytest
import yaml

from benchmarks import model_table, reproduce
from tests.fakedata import make_mnist

RECIPE = "mnist_lenet5 --data.data_dir ../shared/data"
TINY = "--data.download false --trainer.max_epochs 1 --trainer.limit_train_batches 4 --data.batch_size 32"


def write_results(path, *runs):
    path.write_text(yaml.safe_dump({"runs": list(runs), "benchmarks": []}))
    return path


def record(**fields):
    base = {"recipe": "mnist_lenet5", "arch": "lenet5", "data": "MNIST", "full_length": True, "epochs": 1,
            "test_acc": 0.5, "wall_s": 10.0, "hardware": "2-core CPU", "load": "quiet", "commit": "abc1234",
            "date": "2026-12-01", "command": f"cnnlab fit --config {RECIPE} {TINY}"}  # fmt: skip
    return {**base, **fields}


def test_full_length_records_come_first_then_the_latest_and_control_variants_last(tmp_path):
    results = write_results(
        tmp_path / "results.yaml",
        record(date="2026-11-01", test_acc=0.1),
        record(date="2026-12-04", test_acc=0.5, variant="no teacher"),
        record(date="2026-12-03", test_acc=0.2, full_length=False, budget="1 of 10 epochs"),
        record(date="2026-11-20", test_acc=0.3),
        record(recipe="mnist_cnn", test_acc=0.4),
    )
    assert [r["test_acc"] for r in reproduce.records(results, "mnist_lenet5")] == [0.3, 0.1, 0.2, 0.5]


def test_a_control_variant_is_never_the_recipes_own_result():
    runs = [record(test_acc=0.5), record(test_acc=0.4, variant="alpha 0")]
    assert [r["test_acc"] for r in model_table.newest_full_runs(runs, "mnist_lenet5")] == [0.5]


def test_the_recipes_result_is_its_newest_run_of_each_seed_and_never_a_superseded_one():
    runs = [
        record(date="2026-11-01", test_acc=0.1),
        record(date="2026-11-02", test_acc=0.2),  # the same seed measured again
        record(date="2026-11-03", test_acc=0.3, seed=1),
        record(date="2026-11-04", test_acc=0.9, seed=2, superseded="the recipe changed"),
    ]
    assert sorted(r["test_acc"] for r in model_table.newest_full_runs(runs, "mnist_lenet5")) == [0.2, 0.3]
    assert model_table.measured_line({"runs": runs}, "mnist_lenet5").startswith(
        "# Measured: 25.00% ± 7.07 (2 seeds) test accuracy"
    )


def test_seeds_run_on_different_machines_show_the_range_of_their_times_and_both_machines():
    runs = [record(wall_s=60.0, hardware="2-core EPYC"), record(wall_s=120.0, hardware="2-core Xeon", seed=1)]
    line = model_table.measured_line({"runs": runs}, "mnist_lenet5")
    assert "1 min 00 s to 2 min 00 s on a 2-core EPYC / 2-core Xeon" in line


def test_the_command_runs_on_this_machines_shared_data_and_can_be_shortened(tmp_path):
    config, rest = reproduce.fit_arguments(record(), tmp_path / "shared", epochs=None)
    assert config == "mnist_lenet5"
    assert rest[:2] == ["--data.data_dir", str(tmp_path / "shared")]
    _, shortened = reproduce.fit_arguments(record(), tmp_path, epochs=2)
    assert shortened[-2:] == ["--trainer.max_epochs", "2"]  # the last value given wins


@pytest.mark.parametrize(
    "argv, message",
    [
        (["mnist_vgg"], "no record of mnist_vgg; recorded: mnist_lenet5"),
        (["mnist_lenet5", "--record", "3"], "--record must be 1 to 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(argv, message, tmp_path, capsys):
    results = write_results(tmp_path / "results.yaml", record())
    with pytest.raises(SystemExit) as done:
        reproduce.main([*argv, "--results", str(results)])
    assert done.value.code == 2
    assert capsys.readouterr().err.strip() == f"benchmarks.reproduce: error: {message}"


@pytest.mark.slow  # two real (tiny) trainings
def test_a_recorded_run_is_reproduced_to_the_digit_and_a_wrong_figure_is_caught(tmp_path, capsys):
    data = make_mnist(tmp_path / "data", n_train=400, n_test=100)
    wrong = write_results(tmp_path / "wrong.yaml", record(test_acc=0.0))
    with pytest.raises(SystemExit) as done:  # a figure the command does not give: exit status 1
        reproduce.main(["mnist_lenet5", "--results", str(wrong), "--shared", str(data)])
    assert done.value.code == 1
    printed = capsys.readouterr().out
    assert "further than the tolerance of 0.5 points" in printed
    new = next(line for line in printed.splitlines() if line.startswith("| new"))
    accuracy = float(new.split("|")[2].strip().rstrip("%")) / 100

    right = write_results(tmp_path / "right.yaml", record(test_acc=accuracy))
    reproduce.main(["mnist_lenet5", "--results", str(right), "--shared", str(data), "--tolerance", "0"])
    assert "difference +0.00 points: within the tolerance" in capsys.readouterr().out
