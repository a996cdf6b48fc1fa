"""``genevae sweep``: train one run per β, compare them, recommend a β with the reasons.

Each β is a complete run folder (``OUT/beta_<β>/``: trained, evaluated, reported) made
in its own process, up to one per core. The comparison reads those folders only:
final validation rate (KL) and distortion (reconstruction) in nats per cell, KL per
latent dimension, active units, the held-out negative ELBO, and the probe of
``--label`` when given.

The recommendation prefers the βs at which the latent is axis-aligned: its active units
(axes whose posterior mean varies) are no more than its informative directions
(:func:`genevae.diagnosis.latent_units.informative_directions`, rotation-invariant) plus
:func:`alignment_slack`. Below that β the encoder spreads the same directions over
more axes, so per-dimension KL, traversals and the active-unit count overstate the
latent's dimension. Among the aligned βs (all βs when none is aligned, with a note),
it takes the lowest held-out negative ELBO (reconstruction plus KL on the run's
validation cells, a β-free measure of fit) and, among the βs within
:data:`ELBO_TOLERANCE` of that, the largest, which compresses most for the same fit.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd

from genevae.config import RunConfig
from genevae.errors import GenevaeError
from genevae.files import atomic_write_text
from genevae.plot.curves import save_figure
from genevae.plot.sweep import plot_sweep_probes, plot_sweep_rate_distortion, plot_sweep_units
from genevae.report.sweep import write_sweep_report
from genevae.runfolder import RunFolder, SweepFolder
from genevae.services.echo import Echo, print_line
from genevae.services.runfiles import read_diagnosis, read_metrics

__all__ = ["run_sweep", "recommend_beta", "ELBO_TOLERANCE", "ALIGNMENT_SLACK_SHARE",
           "alignment_slack", "is_axis_aligned", "parse_betas"]

#: βs whose held-out negative ELBO is within this share of the best count as equally good.
ELBO_TOLERANCE = 0.005  # genevae choice: 0.5%, the spread of repeated seeds on the tests' data
#: Active units may exceed the informative directions by this share (at least 1) and
#: still count as axis-aligned: axes just above the active-unit variance threshold.
ALIGNMENT_SLACK_SHARE = 0.1  # genevae choice: 20 directions allow 22 active units


def parse_betas(text: str) -> list[float]:
    """``"0.1,0.5,1"`` -> [0.1, 0.5, 1.0]; each β finite and ≥ 0, no repeats."""
    try:
        betas = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise GenevaeError(f"--beta {text}: give comma-separated numbers, e.g. --beta 0.1,0.5,1,2.") from None
    if not betas or any(not math.isfinite(b) or b < 0 for b in betas):
        raise GenevaeError(f"--beta {text}: every β must be a finite number ≥ 0.")
    if len(set(betas)) != len(betas):
        raise GenevaeError(f"--beta {text}: a β is repeated.")
    return sorted(betas)


def _train_one(config: RunConfig, run: str, label: str | None) -> str:
    """Worker: one complete run (one thread each, so the processes share the cores)."""
    import torch

    torch.set_num_threads(1)
    from genevae.commands.evaluate import evaluate_run
    from genevae.commands.report import report_run
    from genevae.commands.train import train_run

    lines: list[str] = []
    train_run(config, run, overwrite=True, echo=lines.append, report=False)
    evaluate_run(run, label=label, echo=lines.append)
    report_run(run)
    return run


def _summary(beta: float, run: RunFolder) -> dict[str, Any]:
    history = pd.read_csv(run.history)
    metrics = read_metrics(run)
    if metrics is None:
        raise GenevaeError(f"{run.root}: no metrics.json; the run's evaluation did not finish.")
    last = history.iloc[-1]
    latent, heldout = metrics["latent"], metrics["heldout"]
    row = {
        "beta": beta,
        "run": str(run.root),
        "verdict": read_diagnosis(run).verdict,
        "rate": float(last["val_kl_sum"]),
        "distortion": float(last["val_recon_sum"]),
        "kl_per_dim": float(last["val_kl_sum"]) / int(latent["n_latent"]),
        "n_active": int(latent["n_active"]),
        "n_directions": latent.get("n_directions"),
        "n_latent": int(latent["n_latent"]),
        "heldout_neg_elbo": float(heldout["model_recon"] + heldout["model_kl"]),
    }
    probes = latent.get("probes")
    if probes:
        row["probe_balanced_accuracy"] = max(probes["mean"][c]["balanced_accuracy_mean"]
                                             for c in ("logistic", "knn"))
        row["majority_rate"] = probes["mean"]["majority_rate"]
        if latent.get("pca_baseline"):
            row["pca_balanced_accuracy"] = max(latent["pca_baseline"][c]["balanced_accuracy_mean"]
                                               for c in ("logistic", "knn"))
    return row


def alignment_slack(n_directions: int) -> int:
    """Extra active units tolerated over ``n_directions`` (:data:`ALIGNMENT_SLACK_SHARE`)."""
    return max(1, math.ceil(ALIGNMENT_SLACK_SHARE * n_directions))


def is_axis_aligned(n_active: int, n_directions: int | None) -> bool:
    """Whether each active unit is its own informative direction, up to :func:`alignment_slack`."""
    return bool(n_directions) and n_active <= n_directions + alignment_slack(n_directions)


def _best_fit(rows: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(lowest held-out −ELBO row, largest β within :data:`ELBO_TOLERANCE` of it)."""
    lowest = min(rows, key=lambda r: r["heldout_neg_elbo"])
    best = lowest["heldout_neg_elbo"]
    scale = abs(best) if best else 1.0
    near = [r for r in rows if r["heldout_neg_elbo"] - best <= ELBO_TOLERANCE * scale]
    return lowest, max(near, key=lambda r: r["beta"])


def _units(row: dict[str, Any]) -> str:
    directions = row.get("n_directions")
    text = f"{row['n_active']} of {row['n_latent']} active units"
    return text if directions is None else f"{text} over {directions} informative directions"


def recommend_beta(rows: Sequence[dict[str, Any]]) -> tuple[float, str]:
    """The recommended β and the reasoning, from :func:`_summary` rows (see module doc)."""
    aligned = [r for r in rows if is_axis_aligned(r["n_active"], r.get("n_directions"))]
    pool = aligned or list(rows)
    lowest, chosen = _best_fit(pool)
    overall, _ = _best_fit(rows)
    beta = f"β = {chosen['beta']:g}"
    if aligned:
        reasons = [f"{beta}: the latent is axis-aligned ({_units(chosen)}), so each active unit "
                   "is a separate factor."]
        spread = [r for r in rows if r not in aligned]
        if spread:
            reasons.append("Not aligned at β = " + ", ".join(
                f"{r['beta']:g} ({_units(r)})" for r in spread)
                + ": there the encoder spreads its directions over more axes.")
    else:
        top = max(rows, key=lambda r: r["beta"])
        reasons = [f"{beta}, chosen by fit alone: at no β is the latent axis-aligned (active units "
                   f"outnumber informative directions; at β = {top['beta']:g}: {_units(top)}). "
                   f"Extend the grid upward (--beta ...,{2 * top['beta']:g}) or train longer "
                   "(--epochs)."]
    reasons.append(
        f"Held-out negative ELBO at {beta}: {chosen['heldout_neg_elbo']:.4g} nats per cell, within "
        f"{ELBO_TOLERANCE:.1%} of the best {'aligned ' if aligned else ''}fit "
        f"({lowest['heldout_neg_elbo']:.4g} "
        f"at β = {lowest['beta']:g}); the largest β that fits this well, so the most compressed.")
    if overall is not lowest:
        cost = (chosen["heldout_neg_elbo"] - overall["heldout_neg_elbo"]) / abs(overall["heldout_neg_elbo"])
        reasons.append(f"The best fit of all is at β = {overall['beta']:g} "
                       f"({overall['heldout_neg_elbo']:.4g}, {_units(overall)}); the aligned latent "
                       f"costs {cost:.1%} of held-out fit.")
    reasons.append(f"At {beta}: KL {chosen['kl_per_dim']:.3g} nats per dimension, verdict "
                   f"{chosen['verdict']}.")
    if "probe_balanced_accuracy" in chosen:
        top = max(rows, key=lambda r: r["probe_balanced_accuracy"])
        reasons.append(
            f"Label probe at {beta}: balanced accuracy "
            f"{chosen['probe_balanced_accuracy']:.3f} (best {top['probe_balanced_accuracy']:.3f} "
            f"at β = {top['beta']:g}; majority rate {chosen['majority_rate']:.3f}).")
    return chosen["beta"], " ".join(reasons)


def run_sweep(
    config: RunConfig,
    betas: Sequence[float],
    out: str | Path,
    label: str | None = None,
    n_workers: int | None = None,
    overwrite: bool = False,
    echo: Echo = print_line,
) -> dict[str, Any]:
    """Train ``config`` at each β (constant schedule kept as configured), compare, recommend.

    Writes ``OUT/sweep.json``, ``OUT/figures/*.png`` and ``OUT/sweep.html``.
    """
    sweep = SweepFolder(Path(out))
    out = sweep.root
    if sweep.json.exists() and not overwrite:
        raise GenevaeError(f"--out {out} already holds a sweep; choose another folder or pass --overwrite.")
    out.mkdir(parents=True, exist_ok=True)
    n_workers = max(1, min(len(betas), n_workers or os.cpu_count() or 1))
    echo(f"sweep of β = {', '.join(f'{b:g}' for b in betas)} in {out} ({n_workers} processes)")
    jobs = {beta: replace(config, objective=replace(config.objective, beta=beta)) for beta in betas}
    with ProcessPoolExecutor(max_workers=n_workers, mp_context=get_context("spawn")) as pool:
        futures = {beta: pool.submit(_train_one, job, str(sweep.run(beta).root), label)
                   for beta, job in jobs.items()}
        for beta, future in futures.items():
            future.result()
            echo(f"β = {beta:g}: done ({sweep.run(beta).root})")
    rows = [_summary(beta, sweep.run(beta)) for beta in betas]
    beta, reasoning = recommend_beta(rows)
    result = {"betas": list(betas), "runs": rows, "recommended_beta": beta, "reasoning": reasoning,
              "label": label}
    atomic_write_text(sweep.json, json.dumps(result, indent=2) + "\n")
    sweep.figures.mkdir(exist_ok=True)
    save_figure(plot_sweep_rate_distortion(rows, beta), sweep.figure("rate_distortion"))
    save_figure(plot_sweep_units(rows, beta), sweep.figure("kl_and_active_units"))
    probes = plot_sweep_probes(rows, beta)
    if probes is not None:
        save_figure(probes, sweep.figure("probe_accuracy"))
    report = write_sweep_report(out)
    echo(f"recommended β = {beta:g}. {reasoning}")
    echo(f"report: {report}")
    return result
