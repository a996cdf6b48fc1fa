"""One history row per epoch, in both loss conventions.

``sum``: reconstruction in nats per cell (summed over genes), KL in nats per cell
(summed over latent dimensions). ``mean``: the reference document's per-element
means, reconstruction / n_genes and KL / n_latent. In each, ``loss = recon + β·kl``
with the unclamped KL (free bits change only what is optimised, which is logged
as ``train_running_loss``). ``train_running_recon`` and ``train_running_kl`` are the
averages over the epoch's training batches (dropout on, weights moving), the way the
reference log's training numbers were made; ``train_*`` are eval-mode passes.
"""

from __future__ import annotations

from genevae.conventions import per_element_mean
from genevae.history.history import kl_dim_column
from genevae.train.evaluate import SplitMetrics

__all__ = ["epoch_record"]


def _split_columns(
    split: str, metrics: SplitMetrics, kl_weight: float, n_genes: int, loss_reduction: str
) -> dict[str, float]:
    n_latent = len(metrics.kl_per_dim)
    recon_mean = per_element_mean(metrics.recon, n_genes)
    kl_mean = per_element_mean(metrics.kl, n_latent)
    row = {
        f"{split}_loss_sum": metrics.recon + kl_weight * metrics.kl,
        f"{split}_recon_sum": metrics.recon,
        f"{split}_kl_sum": metrics.kl,
        f"{split}_loss_mean": recon_mean + kl_weight * kl_mean,
        f"{split}_recon_mean": recon_mean,
        f"{split}_kl_mean": kl_mean,
        f"{split}_active_units": metrics.active_units,
    }
    for name in ("loss", "recon", "kl"):
        row[f"{split}_{name}"] = row[f"{split}_{name}_{loss_reduction}"]
    for dim, value in enumerate(metrics.kl_per_dim):
        row[kl_dim_column(split, dim)] = float(value)
    return row


def epoch_record(
    epoch: int,
    kl_weight: float,
    lr: float,
    train: SplitMetrics,
    val: SplitMetrics,
    running: dict[str, float],
    n_genes: int,
    loss_reduction: str,
    seconds: float,
    n_train_cells: int,
) -> dict[str, float]:
    """The history row of ``epoch`` (1-based), columns as in :mod:`genevae.history.history`."""
    row: dict[str, float] = {"epoch": epoch, "kl_weight": kl_weight, "lr": lr}
    row.update(_split_columns("train", train, kl_weight, n_genes, loss_reduction))
    row.update(_split_columns("val", val, kl_weight, n_genes, loss_reduction))
    for name in ("loss", "recon", "kl"):
        row[f"train_running_{name}"] = running[name]
    row["seconds"] = seconds
    row["cells_per_second"] = n_train_cells / seconds if seconds > 0 else float("nan")
    return row
