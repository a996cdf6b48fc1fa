"""The reference document's three-panel figure: total, reconstruction and KL per epoch.

Plots only draw what the history holds; they compute no statistics. β goes on a
second axis of the KL panel, and epochs where β is below its maximum (warm-up,
the ramps of cyclical annealing) are shaded.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from genevae.files import atomic_write  # noqa: E402
from genevae.history.history import History  # noqa: E402

__all__ = ["plot_curves", "save_figure"]

_UNITS = {
    "sum": ("nats per cell", "nats per cell, summed over latent dims"),
    "mean": ("per gene (mean)", "per latent dim (mean)"),
    "unknown": ("as logged", "as logged"),
}
_TRAIN, _VAL = "tab:blue", "tab:orange"


def plot_curves(history: History) -> matplotlib.figure.Figure:
    """Figure with the panels Total Loss, Reconstruction Loss and KL Divergence."""
    epochs = history.epochs
    recon_unit, kl_unit = _UNITS.get(history.meta.loss_reduction, _UNITS["unknown"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), layout="constrained")
    panels = [("loss", "Total Loss", recon_unit), ("recon", "Reconstruction Loss", recon_unit),
              ("kl", "KL Divergence", kl_unit)]
    for ax, (name, title, unit) in zip(axes, panels, strict=True):
        for split, colour, label in (("train", _TRAIN, "Train"), ("val", _VAL, "Val")):
            values = history.values(f"{split}_{name}")
            if values is not None:
                ax.plot(epochs, values, color=colour, label=label)
        if name == "loss" and history.has("train_running_loss") and history.meta.source == "genevae":
            ax.plot(epochs, history.values("train_running_loss"), color=_TRAIN, linestyle=":",
                    linewidth=1, label="Train (running, dropout on)")
        ax.set_title(title)
        ax.set_xlabel("Epoch")
        ax.set_ylabel(f"{title} ({unit})")
        ax.legend(loc="best", fontsize="small")
    _draw_beta(axes[2], history)
    return fig


def _draw_beta(ax: plt.Axes, history: History) -> None:
    beta = history.values("kl_weight")
    if beta is None:
        return
    epochs = history.epochs
    below_max = np.nan_to_num(beta, nan=np.nanmax(beta)) < np.nanmax(beta)
    for epoch in epochs[below_max]:
        ax.axvspan(epoch - 0.5, epoch + 0.5, color="0.9", zorder=0, linewidth=0)
    twin = ax.twinx()
    twin.plot(epochs, beta, color="0.4", linestyle="--", linewidth=1, label="β")
    twin.set_ylabel("β (KL weight); shaded: β below max")
    twin.set_ylim(bottom=0)


def save_figure(fig: matplotlib.figure.Figure, path: str | os.PathLike[str], dpi: int = 110) -> None:
    """Save ``fig`` as PNG atomically and close it."""
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
