"""Readers of other tools' log formats, on logs of real runs and on the tricky lines.

The ``format_*`` logs were written by ``tests/fixtures/make_format_logs.py``: small VAEs
trained on PBMC counts, their metrics printed or saved as each tool does. The numbers
below are the ones the generator printed for each fixture (epochs, first and last
values per epoch), so each row checks that a format is detected without ``--format``
and read to the values the run produced.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from genevae.errors import GenevaeError
from genevae.history.readers import parse_text, read_history
from genevae.history.readers.steps import Row, is_validation, row_epochs
from genevae.history.readers.text import scan_metrics

LOGS = Path(__file__).parent / "fixtures" / "logs"
MLFLOW_RUN = "format_mlflow_mlruns/1/5b0f3c2e9d8a4c1b"
NEWEST_NOTE = "read version_1, the newest"
STEP_NOTE = "the points are steps, not epochs"
#: The generator prints Lightning's reported values with 4 decimals.
PRINTED = {"rel": 1e-6, "abs": 5e-5}

# path -> (source, n_epochs, {column: (first, last)}, n_latent, a note's words or None)
FIXTURES = {
    "format_plain_spaces.log": (
        "text", 8, {"train_loss": (1527.0, 877.5), "train_kl": (0.7, 28.9),
                    "val_loss": (1454.2, 899.5)}, None, None),
    "format_tqdm_postfix.log": (
        "text", 6, {"train_loss": (1530.1, 937.4), "train_kl": (0.94, 39.81),
                    "val_loss": (1452.0, 929.0)}, None, None),
    "format_steps_with_validation.log": (
        "text", 7, {"train_loss": (1464.42, 912.68), "train_kl": (2.73, 39.978),
                    "val_loss": (1402.28, 895.89), "val_kl": (3.862, 37.704)}, None,
        "grouped into epochs of 6 steps"),
    "format_json_lines.jsonl": (
        "jsonl", 8, {"train_loss": (1554.019, 876.622), "train_kl": (1.704, 28.1735),
                     "val_loss": (1385.346, 881.118)}, None, "last value logged"),
    "format_lightning_logs": (
        "lightning", 5, {"train_loss": (1517.8063, 983.7084), "train_kl": (1.1732, 47.0729),
                         "val_loss": (1456.8701, 947.336)}, 8, NEWEST_NOTE),
    "format_lightning_logs/version_1/metrics.csv": (
        "lightning", 5, {"train_loss": (1517.8063, 983.7084), "val_loss": (1456.8701, 947.336)},
        8, None),
    "format_lightning_logs/version_0": (
        "tensorboard", 3, {"train_loss": (1522.943, 1234.7463), "train_kl": (1.3332, 34.3579),
                           "val_loss": (1414.8489, 1124.329)}, 8, None),
    MLFLOW_RUN: (
        "mlflow", 6, {"train_loss": (1507.8090209960938, 922.163564046224),
                      "train_kl": (1.908458647628625, 41.39280446370443),
                      "val_loss": (1496.9183349609375, 921.2954711914062)}, 8, "'epoch' metric"),
    f"{MLFLOW_RUN}/metrics": (
        "mlflow", 6, {"train_loss": (1507.8090209960938, 922.163564046224)}, 8, None),
    "format_wandb_history.csv": (
        "wandb", 6, {"train_loss": (1444.598, 891.133), "train_kl": (4.7309, 34.6231),
                     "val_loss": (1425.887, 904.615)}, None, None),
    "format_wandb_chart.csv": (
        "wandb", 12, {"train_loss": (1580.336, 1054.738)}, None, STEP_NOTE),
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_format_is_detected_and_read_as_the_run_printed(name):
    source, n_epochs, curves, n_latent, note = FIXTURES[name]
    history = read_history(LOGS / name)
    assert history.meta.source == source
    assert list(history.epochs) == list(range(1, n_epochs + 1))
    for column, (first, last) in curves.items():
        values = history.values(column)
        assert values[0] == pytest.approx(first, **PRINTED), column
        assert values[-1] == pytest.approx(last, **PRINTED), column
    assert history.meta.n_latent == n_latent
    assert history.meta.loss_reduction == "sum"  # nats per cell, hundreds of genes
    if note is not None:
        assert any(note in text for text in history.meta.notes), history.meta.notes


def test_every_format_fixture_is_in_the_table():
    found = {p.name for p in LOGS.glob("format_*")}
    assert found == {name.split("/")[0] for name in FIXTURES}


# -- tricky lines ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ep 12 train_loss 1734.7 kl 4.4 val_loss 1790.3",
         {"train_loss": 1734.7, "kl": 4.4, "val_loss": 1790.3}),
        ("Epoch 3/50: 100%|██████████| 36/36 [00:01<00:00, 25.1it/s, loss=512, kl=3.2, "
         "val_loss=530]", {"loss": 512.0, "kl": 3.2, "val_loss": 530.0}),
        ("step 40 loss[0.53] recon[0.5] (kl 3.2)", {"loss": 0.53, "recon": 0.5, "kl": 3.2}),
        ("{'epoch': 3, 'loss': 0.5, 'kl': 3.1}", {"loss": 0.5, "kl": 3.1}),
        ("{'loss': tensor(0.5012, grad_fn=<AddBackward0>), 'kl': tensor(3.1000)}",
         {"loss": 0.5012, "kl": 3.1}),
        ("{'train': {'loss': 0.5}, 'val': {'loss': 0.6}}", {"train/loss": 0.5, "val/loss": 0.6}),
        ("global_step=1200 it 5 iter 6 iteration 7 loss=0.5", {"loss": 0.5}),
        ("epoch 3 lr 0.001 time 3.2s eta 00:01 done 80% kl 0.2", {"lr": 0.001, "kl": 0.2}),
    ],
)
def test_scan_metrics_of_tricky_lines(line, expected):
    assert scan_metrics(line) == expected


@pytest.mark.parametrize(
    ("text", "epochs", "expected"),
    [
        ("ep: 12 loss 0.5 kl 0.1", [12], {"train_loss": [0.5], "train_kl": [0.1]}),
        ("e 3 loss 0.5", [3], {"train_loss": [0.5]}),
        ("[Epoch 3] loss 0.5\n[Epoch 4] loss 0.4", [3, 4], {"train_loss": [0.5, 0.4]}),
        ("{'epoch': 2, 'loss': 0.5}\n{'epoch': 3, 'loss': 0.4}", [2, 3],
         {"train_loss": [0.5, 0.4]}),
        # per-step lines and the epoch's summary: the epoch's last value
        ("epoch 1 step 10 loss 0.9\nepoch 1 step 20 loss 0.8\nepoch 1 val_loss 0.85\n"
         "epoch 2 step 30 loss 0.7", [1, 2], {"train_loss": [0.8, 0.7], "val_loss": [0.85, None]}),
        # steps before an epoch summary belong to it; after the last, to the next epoch
        ("step 10 loss 0.9\nstep 20 loss 0.8\nepoch 1 val_loss 0.85\nstep 30 loss 0.7", [1, 2],
         {"train_loss": [0.8, 0.7], "val_loss": [0.85, None]}),
        # an epoch header above step lines
        ("Epoch 1/2\nstep 5 loss 0.9\nstep 10 loss 0.8\nEpoch 2/2\nstep 15 loss 0.7", [1, 2],
         {"train_loss": [0.8, 0.7]}),
        # "epochs: 30" in a printed config is no header
        ("epochs: 30\nstep 5 loss 0.9\nstep 10 loss 0.8", [1, 2], {"train_loss": [0.9, 0.8]}),
        # a fractional epoch is a position, not a counter: the step counts
        ("{'loss': 0.9, 'epoch': 0.5, 'step': 5}\n{'loss': 0.8, 'epoch': 1.0, 'step': 10}",
         [1, 2], {"train_loss": [0.9, 0.8]}),
        # PyTorch's example VAE: the test-set line has no counter and follows its epoch
        ("====> Epoch: 1 Average loss: 164.58\n====> Test set loss: 127.35\n"
         "====> Epoch: 2 Average loss: 121.61\n====> Test set loss: 115.93", [1, 2],
         {"train_loss": [164.58, 121.61], "val_loss": [127.35, 115.93]}),
        # a counterless line with a training value is not attached to any epoch
        ("epoch 1 loss 0.9\nloss 0.1\nepoch 2 loss 0.8", [1, 2], {"train_loss": [0.9, 0.8]}),
    ],
)
def test_counters_and_per_step_lines(text, epochs, expected):
    history = parse_text(text)
    assert list(history.epochs) == epochs
    for column, values in expected.items():
        np.testing.assert_allclose(history.values(column),
                                   [math.nan if v is None else v for v in values])


@pytest.mark.parametrize(
    "line",
    ["36/36 [00:01<00:00, 25.1it/s]", "Train 3/50 100%", "lr 0.001 time 3.2s",
     "loss went down 5 times", "epoch 3 lr 0.001 grad_norm 2.5", "epochs 30 batch 100 lr 0.01"],
)
def test_lines_without_a_metric_value_are_not_history(line):
    with pytest.raises(GenevaeError, match="no training history"):
        parse_text(line)


def test_progress_fields_do_not_become_values():
    history = parse_text("Epoch 3/50: 100%|##########| 36/36 [00:01<00:00, 25.1it/s, kl=3.2]")
    assert list(history.frame.columns) == ["epoch", "train_kl"]
    assert history.values("train_kl")[0] == 3.2


# -- steps into epochs -------------------------------------------------------------


def _rows(*rows: tuple[int | None, int | None, dict[str, float]]) -> list[Row]:
    return [Row(epoch, step, metrics) for epoch, step, metrics in rows]


@pytest.mark.parametrize(
    ("rows", "epochs", "note"),
    [
        (_rows((None, 2, {"loss": 1}), (None, 4, {"loss": 1}), (None, 4, {"val_loss": 1}),
               (None, 6, {"loss": 1}), (None, 8, {"val_loss": 1}), (None, 10, {"loss": 1})),
         [1, 1, 1, 2, 2, 3], "epochs of 4 steps"),
        (_rows((None, 5, {"loss": 1}), (None, 5, {"val_loss": 1}), (None, 9, {"val_loss": 1}),
               (None, 20, {"val_loss": 1})),
         [1, 1, 2, 3], STEP_NOTE),
        (_rows((None, 100, {"loss": 1}), (None, 200, {"loss": 1})), [1, 2], STEP_NOTE),
        (_rows((0, 1, {"loss": 1}), (0, 2, {"loss": 1}), (1, 3, {"loss": 1})), [0, 0, 1],
         "last value logged"),
        (_rows((None, 1, {"loss": 1}), (4, None, {"val_loss": 1}), (None, 9, {"loss": 1})),
         [4, 4, 5], None),
    ],
)
def test_row_epochs(rows, epochs, note):
    found, notes = row_epochs(rows, is_validation)
    assert found == epochs
    assert (note is None and notes == ()) or any(note in text for text in notes)


# -- formats built by hand ---------------------------------------------------------


def test_json_lines_nested_split_and_zero_based_epochs(tmp_path):
    lines = [{"epoch": 0, "train": {"loss": 2.0, "kl": 0.5}, "val": {"loss": 2.1}},
             {"epoch": 1, "train": {"loss": 1.5, "kl": 0.6}, "val": {"loss": 1.6}}]
    path = tmp_path / "train.log"
    path.write_text("\n".join(json.dumps(line) for line in lines) + '\n{"epoch": 2, "tr')
    history = read_history(path)
    assert history.meta.source == "jsonl" and list(history.epochs) == [1, 2]
    np.testing.assert_allclose(history.values("val_loss"), [2.1, 1.6])


def test_lightning_versions_without_numbers_are_named(tmp_path):
    for name in ("version_0", "version_best"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.csv").write_text("epoch,step,train_loss\n0,1,1.0\n")
    with pytest.raises(GenevaeError, match="version_0, version_best") as error:
        read_history(tmp_path)
    assert "Give one version folder" in str(error.value)


def test_hparams_without_pyyaml_and_a_nested_latent_dim(tmp_path):
    (tmp_path / "metrics.csv").write_text("epoch,step,train_loss\n0,1,1.0\n")
    (tmp_path / "hparams.yaml").write_text("model:\n  latent_dim: 12\n  n_hidden: 64\n")
    assert read_history(tmp_path).meta.n_latent == 12


def test_a_bad_mlflow_metric_file_names_file_line_and_fix(tmp_path):
    metrics = tmp_path / "run" / "metrics"
    metrics.mkdir(parents=True)
    (metrics / "train_loss").write_text("1700000000000 1.5 0\nnot a metric line at all\n")
    with pytest.raises(GenevaeError, match="train_loss, line 2: expected 'timestamp value step'"):
        read_history(tmp_path / "run")


def test_mlflow_folder_with_a_forced_format_says_to_leave_it_out():
    with pytest.raises(GenevaeError, match="Leave out --format"):
        read_history(LOGS / MLFLOW_RUN, format="csv")


def test_wandb_chart_export_with_two_runs_asks_for_map(tmp_path):
    header = ["Step"] + [f"{run} - train/loss{band}" for run in ("a", "b")
                         for band in ("", "__MIN", "__MAX")]
    path = tmp_path / "chart.csv"
    path.write_text(",".join(header) + "\n1,2,2,2,3,3,3\n")
    with pytest.raises(GenevaeError, match="--map loss="):
        read_history(path)


def test_the_cli_offers_every_reader_format():
    """cli.py spells the --format choices out (it imports no reader at start-up)."""
    from genevae.cli import build_parser
    from genevae.history.readers import FORMATS

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    fmt = next(a for a in commands.choices["diagnose"]._actions if a.dest == "format")
    assert tuple(fmt.choices) == FORMATS
