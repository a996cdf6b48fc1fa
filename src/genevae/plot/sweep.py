"""Pictures of a β sweep, drawn from the per-β summary rows of :mod:`genevae.commands.sweep`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plot_sweep_rate_distortion", "plot_sweep_units", "plot_sweep_probes"]

Rows = Sequence[Mapping[str, Any]]


def _mark(ax: plt.Axes, x: float) -> None:
    ax.axvline(x, color="tab:green", linestyle=":", label="recommended β")


def _beta_axis(ax: plt.Axes, betas: Sequence[float]) -> None:
    """Log-like β axis (linear near 0, which a sweep may include) with a tick per β."""
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xticks(betas, [f"{b:g}" for b in betas])
    ax.minorticks_off()
    ax.set_xlabel("β")


def plot_sweep_rate_distortion(rows: Rows, recommended: float) -> matplotlib.figure.Figure:
    """Final validation distortion against rate, one point per β (Alemi et al. 2018)."""
    fig, ax = plt.subplots(figsize=(6, 5), layout="constrained")
    ax.plot([r["rate"] for r in rows], [r["distortion"] for r in rows], "-o")
    for r in rows:
        colour = "tab:green" if r["beta"] == recommended else "black"
        ax.annotate(f"β={r['beta']:g}", (r["rate"], r["distortion"]), fontsize="small",
                    color=colour, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("Rate: validation KL (nats per cell)")
    ax.set_ylabel("Distortion: validation reconstruction (nats per cell)")
    ax.set_title("Rate–distortion over β")
    return fig


def plot_sweep_units(rows: Rows, recommended: float) -> matplotlib.figure.Figure:
    """KL per latent dimension, active units and informative directions against β."""
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    betas = [r["beta"] for r in rows]
    ax.plot(betas, [r["kl_per_dim"] for r in rows], "-o", color="tab:blue", label="KL per dimension")
    _beta_axis(ax, betas)
    ax.set_ylabel("Validation KL per latent dimension (nats)", color="tab:blue")
    ax.axhspan(0.1, 1.0, color="tab:blue", alpha=0.08, label="healthy band 0.1–1.0")
    twin = ax.twinx()
    twin.plot(betas, [r["n_active"] for r in rows], "-s", color="tab:orange", label="active units")
    if all(r.get("n_directions") is not None for r in rows):
        twin.plot(betas, [r["n_directions"] for r in rows], "--^", color="tab:purple",
                  label="informative directions")
    twin.set_ylabel("Active units (variance > 0.01), informative directions", color="tab:orange")
    twin.set_ylim(bottom=0)
    _mark(ax, recommended)
    handles, names = ax.get_legend_handles_labels()
    twin_handles, twin_names = twin.get_legend_handles_labels()
    ax.legend(handles + twin_handles, names + twin_names, loc="upper right", fontsize="small")
    ax.set_title("KL per dimension, active units and informative directions against β")
    return fig


def plot_sweep_probes(rows: Rows, recommended: float) -> matplotlib.figure.Figure | None:
    """Probe balanced accuracy against β, with PCA and majority rate; None without a label."""
    if not all("probe_balanced_accuracy" in r for r in rows):
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    betas = [r["beta"] for r in rows]
    ax.plot(betas, [r["probe_balanced_accuracy"] for r in rows], "-o", label="latent probe")
    if all("pca_balanced_accuracy" in r for r in rows):
        ax.plot(betas, [r["pca_balanced_accuracy"] for r in rows], "--", color="0.4", label="PCA, same size")
    ax.axhline(rows[0]["majority_rate"], color="tab:red", linestyle=":", label="majority rate")
    _beta_axis(ax, betas)
    ax.set_ylim(0, 1)
    ax.set_ylabel("Balanced accuracy (best of logistic, kNN)")
    _mark(ax, recommended)
    ax.legend(fontsize="small")
    ax.set_title("Label probe against β")
    return fig
