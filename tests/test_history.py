import numpy as np
import pytest

from genevae.history.history import History, HistoryMeta


def _history(reduction="sum", n_latent=4):
    records = [
        {"epoch": e, "train_loss": 10.0 - e, "train_recon": 9.0 - e, "train_kl": 1.0 + e,
         "val_loss": 10.5 - e, "kl_weight": 1.0}
        for e in (2, 1, 3)
    ]
    return History.from_records(records, HistoryMeta(loss_reduction=reduction, n_genes=100,
                                                     n_latent=n_latent))


def test_records_are_sorted_by_epoch():
    assert list(_history().epochs) == [1, 2, 3]


def test_csv_round_trip_keeps_meta(tmp_path):
    history = _history()
    history.to_csv(tmp_path / "history.csv")
    back = History.read_csv(tmp_path / "history.csv")
    assert back.meta.loss_reduction == "sum" and back.meta.n_latent == 4
    assert back.meta.n_genes == 100
    np.testing.assert_allclose(back.values("train_kl"), history.values("train_kl"))


@pytest.mark.parametrize(
    ("reduction", "n_latent", "expected"),
    [("sum", 4, [0.5, 0.75, 1.0]), ("mean", 4, [2.0, 3.0, 4.0]), ("unknown", 4, None),
     ("sum", None, None)],
)
def test_kl_mean_per_dim_conversion(reduction, n_latent, expected):
    values = _history(reduction, n_latent).kl_mean_per_dim("train")
    if expected is None:
        assert values is None
    else:
        np.testing.assert_allclose(values, expected)


def test_missing_columns_are_none():
    history = _history()
    assert history.values("val_kl") is None
    assert not history.has("nonexistent")
