"""Pictures of the latent space: KL heatmap, latent scatter, rate–distortion, probes.

Each function draws what a history or a metrics dictionary already holds
(``metrics.json``) and returns a figure; none computes a statistic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from genevae.history.history import History, kl_dim_column  # noqa: E402

__all__ = ["plot_kl_heatmap", "plot_latent_scatter", "plot_rate_distortion", "plot_probes"]

_MAX_LEGEND_CLASSES = 20


def _kl_matrix(history: History, split: str) -> np.ndarray | None:
    n_latent = history.meta.n_latent
    if not n_latent or not history.has(kl_dim_column(split, 0)):
        return None
    return np.column_stack([history.values(kl_dim_column(split, j)) for j in range(n_latent)])


def plot_kl_heatmap(history: History) -> matplotlib.figure.Figure | None:
    """KL per latent dimension (rows) over epochs (columns), nats; None without those columns.

    Dimensions are ordered by their final KL, so dead ones gather at the bottom.
    """
    split = "val" if _kl_matrix(history, "val") is not None else "train"
    matrix = _kl_matrix(history, split)
    if matrix is None:
        return None
    order = np.argsort(-np.nan_to_num(matrix[-1]))
    values = np.log10(np.clip(matrix[:, order].T, 1e-4, None))
    height = min(10, 2 + 0.12 * len(order))
    fig, ax = plt.subplots(figsize=(10, height), layout="constrained")
    epochs = history.epochs
    image = ax.imshow(values, aspect="auto", cmap="viridis", interpolation="nearest",
                      extent=(epochs[0] - 0.5, epochs[-1] + 0.5, len(order) - 0.5, -0.5))
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Latent dimension (sorted by final KL)")
    step = max(1, len(order) // 16)
    ax.set_yticks(range(0, len(order), step), [str(j) for j in order[::step]])
    ax.set_title(f"KL per latent dimension ({split}), nats — dark rows are collapsed dimensions")
    bar = fig.colorbar(image, ax=ax)
    bar.set_label("log10 KL (nats); −2 = 0.01, the activity threshold")
    return fig


def plot_latent_scatter(
    coords: np.ndarray,
    colour_by: Mapping[str, Sequence[Any]],
    method: str,
    note: str | None = None,
) -> matplotlib.figure.Figure:
    """One scatter panel of the 2-D latent coordinates per label or condition.

    ``coords`` (n_cells, 2); ``colour_by`` maps a column name to (n_cells,) values.
    With no column, one uncoloured panel.
    """
    columns = dict(colour_by) or {"cells": np.zeros(len(coords), dtype=int)}
    n = len(columns)
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 5), layout="constrained", squeeze=False)
    for ax, (name, values) in zip(axes[0], columns.items(), strict=True):
        values = np.asarray(values).astype(str)
        classes = np.unique(values)
        cmap = plt.get_cmap("tab20" if len(classes) > 10 else "tab10")
        for k, cls in enumerate(classes):
            keep = values == cls
            ax.scatter(coords[keep, 0], coords[keep, 1], s=4, color=cmap(k % cmap.N),
                       label=cls if len(classes) <= _MAX_LEGEND_CLASSES else None, alpha=0.7,
                       linewidths=0)
        if 1 < len(classes) <= _MAX_LEGEND_CLASSES:
            ax.legend(markerscale=3, fontsize="x-small", loc="best", frameon=False)
        ax.set_title(f"{method} of latent means — {name}")
        ax.set_xlabel(f"{method} 1")
        ax.set_ylabel(f"{method} 2")
        ax.set_xticks([])
        ax.set_yticks([])
    if note:
        fig.suptitle(note, color="tab:red", fontsize="small")
    return fig


def plot_rate_distortion(history: History) -> matplotlib.figure.Figure | None:
    """Distortion (reconstruction) against rate (KL) per epoch (Alemi et al. 2018).

    Uses the per-cell sums when the history has them, else the logged convention.
    """
    suffix = "_sum" if history.has("train_kl_sum") else ""
    fig, ax = plt.subplots(figsize=(6, 5), layout="constrained")
    drawn = False
    for split, colour in (("train", "tab:blue"), ("val", "tab:orange")):
        rate, distortion = history.values(f"{split}_kl{suffix}"), history.values(f"{split}_recon{suffix}")
        if rate is None or distortion is None:
            continue
        ax.plot(rate, distortion, "-o", color=colour, markersize=3, label=split)
        ax.annotate("start", (rate[0], distortion[0]), fontsize="x-small")
        ax.annotate("end", (rate[-1], distortion[-1]), fontsize="x-small")
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    unit = "nats per cell" if suffix else "as logged"
    ax.set_xlabel(f"Rate: KL ({unit})")
    ax.set_ylabel(f"Distortion: reconstruction ({unit})")
    ax.set_title("Rate–distortion trajectory over epochs")
    ax.legend()
    return fig


def plot_probes(metrics: Mapping[str, Any]) -> matplotlib.figure.Figure | None:
    """Balanced accuracy of each probe next to PCA, majority and chance; None without probes."""
    probes = metrics.get("probes")
    if not probes:
        return None
    bars: list[tuple[str, float, float]] = []
    for name, result in [*probes.items(), ("PCA", metrics.get("pca_baseline"))]:
        if not result:
            continue
        for classifier in ("logistic", "knn"):
            scores = result[classifier]
            label = f"{name if name == 'PCA' else 'latent ' + name}\n{classifier}"
            bars.append((label, scores["balanced_accuracy_mean"], scores["balanced_accuracy_std"]))
    first = next(iter(probes.values()))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(bars)), 4.5), layout="constrained")
    positions = np.arange(len(bars))
    ax.bar(positions, [b[1] for b in bars], yerr=[b[2] for b in bars], color="tab:blue", capsize=3)
    ax.axhline(first["chance_rate"], color="tab:red", linestyle="--",
               label=f"chance (1 / n_classes) {first['chance_rate']:.2f}")
    ax.set_xticks(positions, [b[0] for b in bars], fontsize="small")
    ax.set_ylim(0, 1)
    ax.set_ylabel("Balanced accuracy (5-fold CV)")
    ax.set_title(f"Probes of {first['label_name']!s} (majority-class rate {first['majority_rate']:.2f})")
    ax.legend(loc="upper right", fontsize="small")
    return fig
