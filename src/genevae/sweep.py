"""``genevae sweep``: train one run per β, compare them, recommend a β with the reasons.

Each β is a complete run folder (``OUT/beta_<β>/``: trained, evaluated, reported) made
in its own process, up to one per core. The comparison reads those folders only:
final validation rate (KL) and distortion (reconstruction) in nats per cell, KL per
latent dimension, active units, the held-out negative ELBO, and the probe of
``--label`` when given.

The recommendation is the β with the lowest held-out negative ELBO (reconstruction
plus KL on the run's validation cells, a β-free measure of fit); among the βs within
:data:`ELBO_TOLERANCE` of that minimum, the largest, which compresses most for the same
fit.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
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

__all__ = ["run_sweep", "recommend_beta", "ELBO_TOLERANCE", "parse_betas"]

Echo = Callable[[str], None]
#: βs whose held-out negative ELBO is within this share of the best count as equally good.
ELBO_TOLERANCE = 0.005  # genevae choice: 0.5%, the spread of repeated seeds on the tests' data


def _print(line: str) -> None:
    print(line, flush=True)


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


def _folder(out: Path, beta: float) -> Path:
    return out / f"beta_{beta:g}"


def _train_one(config: RunConfig, run: str, label: str | None) -> str:
    """Worker: one complete run (one thread each, so the processes share the cores)."""
    import torch

    torch.set_num_threads(1)
    from genevae.evaluation import evaluate_run, report_run
    from genevae.workflow import train_run

    lines: list[str] = []
    train_run(config, run, overwrite=True, echo=lines.append, report=False)
    evaluate_run(run, label=label, echo=lines.append)
    report_run(run)
    return run


def _summary(beta: float, run: Path) -> dict[str, Any]:
    history = pd.read_csv(run / "history.csv")
    metrics = json.loads((run / "metrics.json").read_text())
    verdict = json.loads((run / "diagnosis.json").read_text())["verdict"]
    last = history.iloc[-1]
    latent, heldout = metrics["latent"], metrics["heldout"]
    row = {
        "beta": beta,
        "run": str(run),
        "verdict": verdict,
        "rate": float(last["val_kl_sum"]),
        "distortion": float(last["val_recon_sum"]),
        "kl_per_dim": float(last["val_kl_sum"]) / int(latent["n_latent"]),
        "n_active": int(latent["n_active"]),
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


def recommend_beta(rows: Sequence[dict[str, Any]]) -> tuple[float, str]:
    """The recommended β and the reasoning, from :func:`_summary` rows (see module doc)."""
    best = min(r["heldout_neg_elbo"] for r in rows)
    scale = abs(best) if best else 1.0
    near = [r for r in rows if r["heldout_neg_elbo"] - best <= ELBO_TOLERANCE * scale]
    chosen = max(near, key=lambda r: r["beta"])
    lowest = min(rows, key=lambda r: r["heldout_neg_elbo"])
    reasons = [
        f"β = {chosen['beta']:g}: held-out negative ELBO {chosen['heldout_neg_elbo']:.4g} nats per "
        f"cell, within {ELBO_TOLERANCE:.1%} of the best ({lowest['heldout_neg_elbo']:.4g} at "
        f"β = {lowest['beta']:g}); the largest β that fits this well, so the most compressed.",
        f"At β = {chosen['beta']:g}: {chosen['n_active']} of {chosen['n_latent']} latent "
        f"dimensions active, KL {chosen['kl_per_dim']:.3g} nats per dimension, verdict "
        f"{chosen['verdict']}.",
    ]
    worse = [r for r in rows if r not in near]
    if worse:
        reasons.append("Fit worse by more than the tolerance at β = "
                       + ", ".join(f"{r['beta']:g}" for r in worse) + ".")
    if "probe_balanced_accuracy" in chosen:
        top = max(rows, key=lambda r: r["probe_balanced_accuracy"])
        reasons.append(
            f"Label probe at β = {chosen['beta']:g}: balanced accuracy "
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
    echo: Echo = _print,
) -> dict[str, Any]:
    """Train ``config`` at each β (constant schedule kept as configured), compare, recommend.

    Writes ``OUT/sweep.json``, ``OUT/figures/*.png`` and ``OUT/sweep.html``.
    """
    out = Path(out)
    if (out / "sweep.json").exists() and not overwrite:
        raise GenevaeError(f"--out {out} already holds a sweep; choose another folder or pass --overwrite.")
    out.mkdir(parents=True, exist_ok=True)
    n_workers = max(1, min(len(betas), n_workers or os.cpu_count() or 1))
    echo(f"sweep of β = {', '.join(f'{b:g}' for b in betas)} in {out} ({n_workers} processes)")
    jobs = {beta: replace(config, objective=replace(config.objective, beta=beta)) for beta in betas}
    with ProcessPoolExecutor(max_workers=n_workers, mp_context=get_context("spawn")) as pool:
        futures = {beta: pool.submit(_train_one, job, str(_folder(out, beta)), label)
                   for beta, job in jobs.items()}
        for beta, future in futures.items():
            future.result()
            echo(f"β = {beta:g}: done ({_folder(out, beta)})")
    rows = [_summary(beta, _folder(out, beta)) for beta in betas]
    beta, reasoning = recommend_beta(rows)
    result = {"betas": list(betas), "runs": rows, "recommended_beta": beta, "reasoning": reasoning,
              "label": label}
    atomic_write_text(out / "sweep.json", json.dumps(result, indent=2) + "\n")
    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    save_figure(plot_sweep_rate_distortion(rows, beta), figures / "rate_distortion.png")
    save_figure(plot_sweep_units(rows, beta), figures / "kl_and_active_units.png")
    probes = plot_sweep_probes(rows, beta)
    if probes is not None:
        save_figure(probes, figures / "probe_accuracy.png")
    report = write_sweep_report(out)
    echo(f"recommended β = {beta:g}. {reasoning}")
    echo(f"report: {report}")
    return result
