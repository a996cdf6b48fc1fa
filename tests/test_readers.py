"""Readers: every log format genevae diagnoses, its quirks, and its failures."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genevae.errors import GenevaeError
from genevae.history.history import History, HistoryMeta
from genevae.history.logline import format_epoch_line
from genevae.history.readers import infer_loss_reduction, parse_text, read_history
from genevae.history.readers.assemble import history_from_columns
from genevae.history.readers.columns import NameMatch, classify_name
from genevae.history.readers.tensorboard import scalars_to_columns

REFERENCE_LOG = Path(__file__).resolve().parents[2] / "shared" / "reference" / "healthy_bulk_cvae.log"
LOGS = Path(__file__).resolve().parent / "fixtures" / "logs"


def _assert_row(history: History, epoch: int, expected: dict[str, float]) -> None:
    """The epoch's row holds exactly ``expected`` (NaN or absent elsewhere)."""
    row = history.frame.set_index("epoch").loc[epoch].to_dict()
    assert set(expected) <= set(row), row
    for column, value in row.items():
        if column in expected:
            assert value == pytest.approx(expected[column], nan_ok=True), column
        else:
            assert math.isnan(value), (column, value)


# -- reference format --------------------------------------------------------------


def test_reference_log_parses_to_30_epochs_in_the_mean_convention():
    history = read_history(REFERENCE_LOG)
    assert len(history) == 30
    assert list(history.epochs) == list(range(1, 31))
    _assert_row(history, 1, {"train_loss": 0.8684, "train_recon": 0.8440, "train_kl": 0.0488,
                             "val_loss": 0.7531})
    assert history.meta.loss_reduction == "mean"
    assert history.meta.source == "text"
    assert history.meta.path == str(REFERENCE_LOG)


def test_parse_text_reads_the_reference_lines():
    history = parse_text(REFERENCE_LOG.read_text())
    assert len(history) == 30 and history.meta.path == "<text>"
    assert history.values("val_loss")[-1] == pytest.approx(0.3967)


def test_logline_output_reads_back():
    records = [{"epoch": e, "train_loss": 1523.25 - e, "train_recon": 1500.0 - e,
                "train_kl": 23.25, "val_loss": 1600.5} for e in (1, 2, 1234)]
    history = parse_text("\n".join(format_epoch_line(r) for r in records))
    assert list(history.epochs) == [1, 2, 1234]
    assert history.meta.loss_reduction == "sum"


# -- tolerant text variants --------------------------------------------------------

TRAIN = {"train_loss": 0.5, "train_recon": 0.4, "train_kl": 0.2}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Epoch 1/50 train loss: 0.5 recon: 0.4 kl: 0.2", TRAIN),
        ("EPOCH 001 | TRAIN LOSS=0.5 RECON=0.4 KL=0.2", TRAIN),
        ("epoch 1 loss=5e-1 recon=4.0E-01 kl=+.2", TRAIN),
        ("[Epoch 1] loss = 0.5, rec_loss = 0.4, kld = 0.2", TRAIN),
        ("Epoch 1 - Train: loss=0.5, recon=0.4, kl=0.2 - Val: loss=0.6, recon=0.5, kl=0.3",
         {**TRAIN, "val_loss": 0.6, "val_recon": 0.5, "val_kl": 0.3}),
        ("epoch: 1, train_loss: 0.5, val_loss: 0.6, beta: 0.3, lr: 1e-3, time: 12.3s",
         {"train_loss": 0.5, "val_loss": 0.6, "kl_weight": 0.3}),
        ("[Epoch 1] Validation loss 0.6 | Training loss 0.5",
         {"train_loss": 0.5, "val_loss": 0.6}),
        ("epoch=1 kl_weight=0.25 loss=0.5 val/loss=0.6", {"train_loss": 0.5, "val_loss": 0.6,
                                                          "kl_weight": 0.25}),
        ("Epoch 1: train_loss=nan recon=inf kl=-inf",
         {"train_loss": math.nan, "train_recon": math.inf, "train_kl": -math.inf}),
        ("Epoch 1, Train: 0.5, Val: 0.6", {"train_loss": 0.5, "val_loss": 0.6}),
    ],
)
def test_tolerant_line_variants(line, expected):
    _assert_row(parse_text(line), 1, expected)


def test_nan_and_inf_values_are_kept():
    history = read_history(LOGS / "quirk_divergence_nan_inf.log")
    assert list(history.epochs) == [1, 2, 3]
    assert history.values("val_loss")[1] == math.inf
    assert np.isnan(history.values("train_loss")[2])
    assert history.values("train_loss")[1] == pytest.approx(9.7e3)


def test_mixed_case_labels_and_garbage_lines():
    history = read_history(LOGS / "quirk_mixed_case_labels.log")
    assert list(history.epochs) == [1, 2, 3, 4]
    _assert_row(history, 3, {"train_loss": 0.7, "train_recon": 0.6, "train_kl": 0.3,
                             "val_loss": 0.8, "val_recon": 0.68, "val_kl": 0.31})


def test_log_every_k_epochs_with_extra_fields():
    history = read_history(LOGS / "quirk_every_5_epochs_extra_fields.txt")
    assert list(history.epochs) == [5, 10, 15]
    np.testing.assert_allclose(history.values("kl_weight"), [0.5, 1.0, 1.0])
    assert not history.has("lr") and not history.has("val_loss")
    assert history.meta.loss_reduction == "sum"


def test_missing_validation_part():
    history = read_history(LOGS / "quirk_no_validation.log")
    assert len(history) == 3 and not history.has("val_loss")
    assert history.meta.loss_reduction == "mean"


def test_repeated_epoch_keeps_the_last_line():
    history = read_history(LOGS / "quirk_resumed_duplicate_epochs.log")
    assert list(history.epochs) == [1, 2, 3, 4]
    assert history.values("train_loss")[2] == pytest.approx(0.74)


def test_progress_bars_carriage_returns_ansi_and_crlf(tmp_path):
    lines = [
        "Epoch 1:  50%|#####     | 5/10 [00:01<00:01]\rEpoch 1: 100%|##########| 10/10\r"
        "\x1b[32mepoch 001 | train loss=0.9000 recon=0.8000 kl=0.2000 | val loss=0.9500\x1b[0m",
        "\x1b[1mepoch 002\x1b[0m | train loss=0.8000 recon=0.7000 kl=0.2000",
        "",
        "  garbage ~~~ 12 34 loss",
    ]
    log = tmp_path / "train.log"
    log.write_bytes("\r\n".join(lines).encode())
    history = read_history(log)
    assert list(history.epochs) == [1, 2]
    _assert_row(history, 1, {"train_loss": 0.9, "train_recon": 0.8, "train_kl": 0.2,
                             "val_loss": 0.95})


def test_tqdm_segment_after_the_epoch_line_does_not_hide_it():
    text = "epoch 3 | train loss=0.5 recon=0.4 kl=0.2\r 42%|####2     | 21/50\n"
    _assert_row(parse_text(text), 3, TRAIN)


def test_utf16_log_written_by_powershell(tmp_path):
    log = tmp_path / "train.log"
    log.write_bytes(REFERENCE_LOG.read_text().encode("utf-16"))
    assert len(read_history(log)) == 30


def test_lines_may_name_one_quantity_differently():
    history = read_history(LOGS / "quirk_pytorch_examples_vae.log")
    np.testing.assert_allclose(history.values("train_loss"), [164.583, 121.6102])
    assert history.meta.loss_reduction == "sum"


def test_map_names_a_text_key():
    history = parse_text("epoch 1 | train loss=0.5 fit=0.4 kl=0.2", column_map={"recon": "fit"})
    _assert_row(history, 1, TRAIN)


def test_map_of_a_key_no_line_has():
    with pytest.raises(GenevaeError, match="no key 'fit'"):
        parse_text("epoch 1 | train loss=0.5 kl=0.2", column_map={"recon": "fit"})


def test_two_recon_keys_in_text_are_ambiguous():
    with pytest.raises(GenevaeError, match="--map recon="):
        parse_text("epoch 1 loss=0.5 recon=0.4 mse=0.3 kl=0.2")


# -- Keras console output ----------------------------------------------------------


def test_keras_fit_output():
    history = read_history(LOGS / "quirk_keras_fit.txt")
    assert history.meta.source == "keras" and list(history.epochs) == [1, 2, 3]
    _assert_row(history, 2, {"train_loss": 180.5512, "train_recon": 172.33, "train_kl": 8.2212,
                             "val_loss": 176.1, "val_recon": 167.9, "val_kl": 8.2})
    assert history.meta.loss_reduction == "sum"


def test_keras3_progress_bar_with_redraws_and_colour(tmp_path):
    text = (
        "Epoch 1/2\n"
        "\x1b[1m 1/70\x1b[0m ━━━━━━━━━━━━━━━━━━━━ \x1b[1m0s\x1b[0m 5ms/step - kl_loss: 0.9 - loss: 2.0"
        "\r\x1b[1m70/70\x1b[0m ━━━━━━━━━━━━━━━━━━━━ \x1b[1m1s\x1b[0m 9ms/step - kl_loss: 0.2"
        " - loss: 0.5 - reconstruction_loss: 0.4 - val_loss: 0.6\n"
        "Epoch 2/2\n"
        "70/70 - 1s - 9ms/step - kl_loss: 0.25 - loss: 0.45 - reconstruction_loss: 0.35\n"
    )
    log_history = read_history(_write(tmp_path, text, "fit.out"))
    _assert_row(log_history, 1, {**TRAIN, "val_loss": 0.6})
    _assert_row(log_history, 2, {"train_loss": 0.45, "train_recon": 0.35, "train_kl": 0.25})


def test_keras_format_can_be_forced():
    history = read_history(LOGS / "quirk_keras_fit.txt", format="keras")
    assert len(history) == 3


# -- tables ------------------------------------------------------------------------

SCVI_EPOCH_2 = {"kl_weight": 0.0025, "train_loss": 1521.05, "train_recon": 1521.0,
                "train_kl": 20.0, "val_loss": 1502.05, "val_recon": 1502.0, "val_kl": 20.0}


def test_scvi_history_csv():
    history = read_history(LOGS / "quirk_scvi_history.csv")
    assert history.meta.source == "scvi-tools" and history.meta.loss_reduction == "sum"
    assert list(history.epochs) == [1, 2, 3]
    _assert_row(history, 2, SCVI_EPOCH_2)


def test_scvi_history_json_from_to_dict():
    history = read_history(LOGS / "quirk_scvi_history_to_dict.json")
    assert history.meta.source == "scvi-tools" and list(history.epochs) == [1, 2, 3]
    _assert_row(history, 2, SCVI_EPOCH_2)


def test_scvi_history_json_dict_of_lists_adds_nonzero_global_kl(tmp_path):
    document = {"elbo_train": [110.0, 90.0], "reconstruction_loss_train": [100.0, 80.0],
                "kl_local_train": [8.0, 9.0], "kl_global_train": [2.0, 1.0],
                "kl_weight": [1.0, 1.0], "elbo_validation": [120.0, None]}
    history = read_history(_write(tmp_path, json.dumps(document), "history.json"))
    np.testing.assert_allclose(history.values("train_kl"), [10.0, 10.0])
    np.testing.assert_allclose(history.values("train_loss"), [110.0, 90.0])  # elbo: no epoch loss
    assert history.values("val_loss")[0] == 120.0 and np.isnan(history.values("val_loss")[1])


def test_lightning_metrics_csv_with_interleaved_rows():
    history = read_history(LOGS / "quirk_lightning_metrics.csv")
    assert history.meta.source == "lightning" and list(history.epochs) == [1, 2]
    _assert_row(history, 1, {"kl_weight": 0.1, "train_loss": 1.10, "train_recon": 1.082,
                             "train_kl": 0.18, "val_loss": 1.00, "val_recon": 0.979,
                             "val_kl": 0.21})
    _assert_row(history, 2, {"kl_weight": 0.2, "train_loss": 0.92, "train_recon": 0.868,
                             "train_kl": 0.26, "val_loss": 0.90, "val_recon": 0.846,
                             "val_kl": 0.27})


def test_lightning_step_only_metric_takes_the_epochs_last_step(tmp_path):
    text = "epoch,step,train_loss,val_loss\n0,9,1.5,\n0,19,1.2,\n0,19,,1.3\n1,29,nan,\n1,39,,1.1\n"
    history = read_history(_write(tmp_path, text, "metrics.csv"))
    assert history.values("train_loss")[0] == 1.2
    assert np.isnan(history.values("train_loss")[1])  # a NaN step is a value, kept
    np.testing.assert_allclose(history.values("val_loss"), [1.3, 1.1])


def test_keras_history_json():
    history = read_history(LOGS / "quirk_keras_history.json")
    assert history.meta.source == "keras" and list(history.epochs) == [1, 2, 3]
    _assert_row(history, 3, {"train_loss": 170.0004, "train_recon": 161.2, "train_kl": 8.8004,
                             "val_loss": 169.5, "val_recon": 160.7, "val_kl": 8.8})


def test_keras_csvlogger_file_named_log_is_found_by_content():
    history = read_history(LOGS / "quirk_keras_csvlogger_training.log")
    assert history.meta.source == "keras" and list(history.epochs) == [1, 2]
    assert history.values("val_recon")[1] == pytest.approx(167.9)


def test_per_dimension_kl_columns():
    history = read_history(LOGS / "quirk_per_dim_kl.csv")
    assert history.meta.n_latent == 2
    np.testing.assert_allclose(history.kl_per_dim("train"), [[0.39, 0.01], [0.395, 0.005]])
    np.testing.assert_allclose(history.kl_per_dim("val"), [[0.38, 0.02], [0.39, 0.01]])


def test_json_records_and_split_orient(tmp_path):
    frame = pd.DataFrame({"epoch": [1, 2], "total": [0.9, 0.8], "nll": [0.7, 0.6],
                          "kl_div": [0.2, 0.2]})
    for orient in ("records", "split"):
        history = read_history(_write(tmp_path, frame.to_json(orient=orient), f"h_{orient}.json"))
        _assert_row(history, 2, {"train_loss": 0.8, "train_recon": 0.6, "train_kl": 0.2})


def test_tab_separated_table(tmp_path):
    text = "Epoch\tTrainLoss\tValLoss\n1\t0.9\t1.0\n2\t0.8\t0.9\n"
    history = read_history(_write(tmp_path, text, "log.tsv"))
    _assert_row(history, 2, {"train_loss": 0.8, "val_loss": 0.9})


def test_ambiguous_columns_name_the_candidates_and_the_fix():
    with pytest.raises(GenevaeError) as error:
        read_history(LOGS / "quirk_ambiguous_recon.csv")
    message = str(error.value)
    assert "'recon'" in message and "'mse'" in message and "--map recon=" in message
    assert "quirk_ambiguous_recon.csv" in message


def test_map_overrides_auto_mapping():
    history = read_history(LOGS / "quirk_ambiguous_recon.csv", column_map={"recon": "mse"})
    np.testing.assert_allclose(history.values("train_recon"), [0.75, 0.65])


def test_map_names_columns_the_patterns_miss(tmp_path):
    text = "it,objective_value,decoder_fit,prior_gap,held_out\n1,0.9,0.7,0.2,1.0\n"
    history = read_history(
        _write(tmp_path, text, "t.csv"),
        column_map={"epoch": "it", "recon": "decoder_fit", "kl": "prior_gap",
                    "val_loss": "held_out"},
    )
    _assert_row(history, 1, {"train_loss": 0.9, "train_recon": 0.7, "train_kl": 0.2,
                             "val_loss": 1.0})


@pytest.mark.parametrize(
    ("column_map", "match"),
    [({"reconstruction": "mse"}, "unknown key"), ({"recon": "nope"}, "no column or key 'nope'")],
)
def test_bad_map(column_map, match):
    with pytest.raises(GenevaeError, match=match):
        read_history(LOGS / "quirk_ambiguous_recon.csv", column_map=column_map)


def test_genevae_history_round_trip(tmp_path):
    records = [{"epoch": e, "kl_weight": 0.5, "train_loss": 1.0 / e, "train_recon": 0.9 / e,
                "train_kl": 0.2, "val_loss": 1.1 / e, "train_kl_dim_000": 0.39,
                "train_kl_dim_001": 0.01, "train_active_units": 1.0} for e in (1, 2, 3)]
    meta = HistoryMeta(loss_reduction="mean", n_genes=2000, n_latent=2, kl_schedule="constant")
    History.from_records(records, meta).to_csv(tmp_path / "history.csv")
    for path in (tmp_path / "history.csv", tmp_path):  # the file or its run folder
        back = read_history(path)
        assert back.meta.source == "genevae" and back.meta.loss_reduction == "mean"
        assert (back.meta.n_genes, back.meta.n_latent, back.meta.kl_schedule) == (2000, 2,
                                                                                 "constant")
        np.testing.assert_allclose(back.values("train_loss"), [1.0, 0.5, 1.0 / 3], rtol=1e-5)
        assert back.kl_per_dim("train").shape == (3, 2)


def test_lightning_log_folder_is_read_through_metrics_csv(tmp_path):
    (tmp_path / "metrics.csv").write_text((LOGS / "quirk_lightning_metrics.csv").read_text())
    assert read_history(tmp_path).meta.source == "lightning"


# -- loss convention and caller overrides ------------------------------------------


def _history_of(**columns):
    n = len(next(iter(columns.values())))
    return History(pd.DataFrame({"epoch": range(1, n + 1), **columns}), HistoryMeta())


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ({"train_recon": [0.84, 0.3], "train_kl": [0.05, 0.33]}, "mean"),
        ({"train_recon": [1500.0, 1400.0], "train_kl": [30.0, 40.0]}, "sum"),
        ({"train_loss": [212.0, 170.0]}, "sum"),
        ({"train_loss": [0.9, 0.5]}, "mean"),
        ({"train_recon": [-2.5, -3.0], "train_kl": [0.1, 0.2]}, "mean"),
        ({"train_recon": [40.0, 35.0], "train_kl": [5.0, 6.0]}, "unknown"),
        ({"train_recon": [2.0, 1.5], "train_kl": [30.0, 40.0]}, "unknown"),
        ({"train_recon": [math.nan, math.inf]}, "unknown"),
        ({"train_kl": [0.1, 0.2]}, "unknown"),
    ],
)
def test_infer_loss_reduction(columns, expected):
    assert infer_loss_reduction(_history_of(**columns)) == expected


def test_caller_overrides_what_was_read():
    history = read_history(REFERENCE_LOG, loss_reduction="sum", n_latent=64, n_genes=2000)
    assert (history.meta.loss_reduction, history.meta.n_latent, history.meta.n_genes) == (
        "sum", 64, 2000)


@pytest.mark.parametrize(
    ("options", "match"),
    [({"format": "xml"}, "--format xml"), ({"loss_reduction": "median"}, "--loss-reduction"),
     ({"n_latent": 0}, "--n-latent"), ({"n_genes": 2.5}, "--n-genes")],
)
def test_bad_options(options, match):
    with pytest.raises(GenevaeError, match=match):
        read_history(REFERENCE_LOG, **options)


# -- names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "column", "rank"),
    [
        ("loss", "train_loss", (1, 0)),
        ("val_loss", "val_loss", (1, 0)),
        ("elbo_validation", "val_loss", (1, 1)),
        ("train_loss_epoch", "train_loss", (0, 0)),
        ("train_loss_step", "train_loss", (2, 0)),
        ("reconstruction_loss_train", "train_recon", (1, 0)),
        ("val_reconstruction_loss", "val_recon", (1, 0)),
        ("kl_local_validation", "val_kl", (1, 0)),
        ("kl_global_train", "train_kl_global", (1, 0)),
        ("kl_loss", "train_kl", (1, 0)),
        ("KLD", "train_kl", (1, 0)),
        ("valLoss", "val_loss", (1, 0)),
        ("validation/epoch_loss", "val_loss", (0, 0)),
        ("test_nll", "val_recon", (1, 0)),
        ("beta", "kl_weight", (1, 0)),
        ("kl_w", "kl_weight", (1, 0)),
        ("kl_weight", "kl_weight", (1, 0)),
        ("val_kl_dim_3", "val_kl_dim_003", (1, 0)),
        ("train_kl_dim_012", "train_kl_dim_012", (1, 0)),
        ("train_loss_sum", "train_loss", (3, 0)),
    ],
)
def test_classify_name(name, column, rank):
    assert classify_name(name) == NameMatch(column, rank)


@pytest.mark.parametrize("name", ["epoch", "step", "lr", "grad_norm", "v_num", "hp_metric",
                                  "train_active_units", "epoch_time", "best_val_loss"])
def test_names_that_are_not_curves(name):
    assert classify_name(name) is None


# -- TensorBoard -------------------------------------------------------------------


def test_tensorboard_missing_package_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    event_file = tmp_path / "events.out.tfevents.1700000000.host.1.0"
    event_file.write_bytes(b"\x18\x00\x00\x00\x00\x00\x00\x00")
    for path in (event_file, tmp_path):
        with pytest.raises(GenevaeError, match="pip install tensorboard"):
            read_history(path)


def test_tensorboard_lightning_scalars_use_the_epoch_tag():
    scalars = {
        "epoch": [(49, 0.0), (69, 0.0), (99, 1.0), (139, 1.0)],
        "train_loss_step": [(49, 1.2), (99, 0.95)],
        "train_loss_epoch": [(69, 1.1), (139, 0.92)],
        "val_loss": [(69, 1.0), (139, 0.9)],
        "hp_metric": [(0, -1.0)],
    }
    columns, epochs = scalars_to_columns(scalars)
    history = history_from_columns(columns, epochs, source="tensorboard", where="tb")
    assert list(history.epochs) == [1, 2]
    np.testing.assert_allclose(history.values("train_loss"), [1.1, 0.92])
    np.testing.assert_allclose(history.values("val_loss"), [1.0, 0.9])


def test_tensorboard_keras_folders_give_the_split():
    scalars = {
        "train/epoch_loss": [(0, 212.4), (1, 180.6)],
        "train/epoch_kl_loss": [(0, 7.3), (1, 8.2)],
        "validation/epoch_loss": [(0, 190.2), (1, 176.1)],
        "validation/evaluation_loss_vs_iterations": [(70, 190.2), (140, 176.1)],
    }
    columns, epochs = scalars_to_columns(scalars)
    history = history_from_columns(columns, epochs, source="tensorboard", where="tb")
    assert list(history.epochs) == [1, 2]
    _assert_row(history, 2, {"train_loss": 180.6, "train_kl": 8.2, "val_loss": 176.1})


# -- failures ----------------------------------------------------------------------


def test_unreadable_log_says_what_was_expected():
    path = LOGS / "quirk_unreadable.log"
    with pytest.raises(GenevaeError) as error:
        read_history(path)
    message = str(error.value)
    assert str(path) in message
    assert "epoch 001 | train loss=0.8684 recon=0.8440 kl=0.0488 | val loss=0.7531" in message
    for name in ("Keras", "scvi-tools", "Lightning", "TensorBoard"):
        assert name in message


def test_parse_text_of_nothing_is_an_error():
    with pytest.raises(GenevaeError, match="<text>: no training history found"):
        parse_text("")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda d: d / "absent.log", "no such file"),
        (lambda d: d, "folder without a training log"),
        (lambda d: _write_bytes(d / "model.pt", b"PK\x03\x04\x00\x00\xff\xfe"), "binary"),
        (lambda d: _write_bytes(d / "empty.csv", b""), "no training history"),
        (lambda d: _write_bytes(d / "h.json", b'{"loss": ['), "Not valid JSON"),
        (lambda d: _write_bytes(d / "h.json", b'{"lr": [0.1, 0.01]}'), "'lr'"),
    ],
)
def test_missing_binary_and_empty_inputs(tmp_path, make, match):
    with pytest.raises(GenevaeError, match=match):
        read_history(make(tmp_path))


def test_forced_format_reads_only_that_format():
    with pytest.raises(GenevaeError, match="As csv"):
        read_history(REFERENCE_LOG, format="csv")
    assert len(read_history(REFERENCE_LOG, format="text")) == 30


# -- robustness and speed ----------------------------------------------------------

_FUZZ = settings(max_examples=200, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])
_LOG_ALPHABET = st.sampled_from(list("epoch EPOCH 0123456789.,:=|/-_eE+\r\n\t\x1b[]{}\"")
                                + ["loss", "recon", "kl", "val", "train", "beta", "nan",
                                   "inf", "Epoch 1/3\n", " - loss: ", "step", "x"])


@_FUZZ
@given(st.one_of(st.text(), st.lists(_LOG_ALPHABET, max_size=60).map("".join)))
def test_parse_text_returns_epochs_or_a_genevae_error(text):
    try:
        history = parse_text(text)
    except GenevaeError:
        return
    assert len(history) >= 1


_NAMES = st.sampled_from(["epoch", "step", "loss", "val_loss", "recon", "kl", "kl_weight",
                          "elbo_train", "kl_global_train", "kl_dim_0", "Epoch", ""])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | _NAMES,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_NAMES | st.text(max_size=3),
                                                                inner, max_size=5),
    max_leaves=30,
)
_CSV = st.lists(
    st.lists(_NAMES | st.sampled_from(["1", "0", "-1", "nan", "inf", "1e400", "2.5", "", "x"]),
             min_size=1, max_size=5).map(",".join),
    max_size=6,
).map("\n".join)


@_FUZZ
@given(
    data=st.one_of(st.binary(max_size=400),
                   st.lists(_LOG_ALPHABET, max_size=60).map(lambda p: "".join(p).encode()),
                   _JSON.map(lambda document: json.dumps(document).encode()),
                   _CSV.map(str.encode)),
    suffix=st.sampled_from([".csv", ".json", ".log"]),
)
def test_table_reader_returns_epochs_or_a_genevae_error(tmp_path, data, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        history = read_history(path)
    except GenevaeError:
        return
    assert len(history) >= 1


def test_a_100000_line_log_is_read_whole(tmp_path):
    """Size, not speed: the timing is in benchmarks/bench_readers.py."""
    lines = [format_epoch_line({"epoch": e, "train_loss": 0.5 + 1 / e, "train_recon": 0.4,
                                "train_kl": 0.1 + 1 / e, "val_loss": 0.6})
             for e in range(1, 100_001)]
    path = tmp_path / "long.log"
    path.write_text("\n".join(lines) + "\n")
    history = read_history(path)
    assert len(history) == 100_000
    assert history.values("train_kl")[-1] == pytest.approx(0.1, abs=1e-4)


# -- helpers -----------------------------------------------------------------------


def _write(folder: Path, text: str, name: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
