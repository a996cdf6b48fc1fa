"""Turn latent-space measurements into findings.

Reads a :class:`~genevae.diagnosis.latent.LatentMetrics` (or its ``to_dict()`` form,
e.g. read back from JSON) and returns :class:`~genevae.diagnosis.findings.Finding`
objects for :func:`genevae.diagnosis.engine.diagnose`'s ``extra_findings``. Codes:

- ``active_units``: dimensions whose posterior mean varies over cells (Burda et al.
  2015) and whose KL exceeds 0.01 nats; fail at none, warn when most are inactive;
- ``posterior_collapse``: the rate or the MI estimate below log 2 nats, less than one
  binary split of the cells (rate ≥ I(x; z)); fail;
- ``probe_at_majority``: fail when the probe is within
  :data:`PROBE_CHANCE_TOLERANCE` of chance: the latent carries no label information;
- ``probe_below_pca``: warn when the latent probes worse than PCA of the same size;
- ``probe_label_is_condition``: warn that the probed label is a model condition;
- ``mi_at_ceiling``: the MI estimate and whether it is saturated (informational);
- ``prior_mismatch``: KL(q(z) ‖ p(z)) = rate − MI (informational);
- ``label_silhouette``, ``batch_mixing``: structure scores (informational; no
  published threshold applies to a VAE latent);
- ``uninformative_latent``: on held-out cells, the reconstruction the latent gains
  over the no-latent baseline does not pay for the KL it costs; fail
  (:func:`genevae.diagnosis.heldout.heldout_finding`).

The codes are named in :mod:`genevae.diagnosis.codes`
(:data:`~genevae.diagnosis.codes.LATENT_FINDING_CODES`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from genevae.conventions import ACTIVE_UNIT_VARIANCE
from genevae.diagnosis import codes
from genevae.diagnosis.findings import Finding, Severity
from genevae.diagnosis.heldout import heldout_finding
from genevae.diagnosis.latent import LatentMetrics
from genevae.diagnosis.latent_units import INFORMATIVE_DIRECTION_SNR
from genevae.diagnosis.probes import ProbeResult
from genevae.diagnosis.rules.common import fix_collapse, fmt, lower_beta, num
from genevae.diagnosis.thresholds import ACTIVE_DIM_KL, COLLAPSE_RATE, PARTIAL_COLLAPSE_DEAD_SHARE

__all__ = [
    "PROBE_CHANCE_TOLERANCE",
    "PROBE_PCA_MARGIN",
    "NEAR_COLLAPSE_ACTIVE_SHARE",
    "MI_CEILING_MARGIN",
    "latent_findings",
]

#: Fewer than this share of latent dimensions active is collapse, not partial collapse.
NEAR_COLLAPSE_ACTIVE_SHARE = 0.1  # genevae choice: fewer than 1 dimension in 10 in use
#: A probe's balanced accuracy within this of chance (1 / n_classes) is "at chance".
PROBE_CHANCE_TOLERANCE = 0.05  # genevae choice: 2.5 fold-to-fold sds (≈ 0.02 on 700 cells)
#: The latent probes below PCA when its balanced accuracy trails PCA's by more than this.
PROBE_PCA_MARGIN = 0.02  # genevae choice: about one fold-to-fold sd on 700 cells
#: The MI estimate equals log M − mean_j log(1 + Σ_{i≠j} q(z_j|x_i) / q(z_j|x_j)); within
#: log 2 of log M, the other cells' posteriors together weigh less at z_j than the cell's
#: own: the estimate is saturated and only bounds I(x; z) from below.
MI_CEILING_MARGIN = math.log(2)  # genevae choice, from the estimator's form (He et al. 2019)


def _fix_below_pca(beta: float | None) -> str:
    return (f"Lower β ({lower_beta(beta)}) or train longer, and check the KL findings: a latent "
            "that keeps less label information than PCA of the same size is under-used.")


def _active_units(metrics: LatentMetrics, beta: float | None) -> Finding:
    """Dimensions whose posterior mean varies over cells *and* that carry information.

    A dimension counts as active only when both hold: its posterior-mean variance exceeds
    ``ACTIVE_UNIT_VARIANCE`` (Burda et al. 2015) and its mean KL exceeds ``ACTIVE_DIM_KL``
    nats. The variance of an unscaled mean says nothing when the posterior noise is as
    wide: a dimension whose KL is 0.003 nats carries no information however its mean
    varies, so the encoder's evidence can only make the count smaller, never larger,
    than the information measure's.
    """
    n_latent = metrics.n_latent
    n_active = sum(variance > ACTIVE_UNIT_VARIANCE and kl > ACTIVE_DIM_KL
                   for variance, kl in zip(metrics.posterior_mean_variance,
                                           metrics.kl_per_dim_mean, strict=True))
    n_active_kl = sum(kl > ACTIVE_DIM_KL for kl in metrics.kl_per_dim_mean)
    evidence: dict[str, float | int | str] = {
        "n_active": n_active,
        "n_latent": n_latent,
        "active_when": (f"posterior-mean variance > {ACTIVE_UNIT_VARIANCE:g} and mean KL > "
                        f"{ACTIVE_DIM_KL:g} nats"),
        "n_active_variance": metrics.n_active,
        "n_active_kl": n_active_kl,
        "max_posterior_mean_variance": num(max(metrics.posterior_mean_variance)),
        "n_cells": metrics.n_cells,
    }
    rotated = ""
    if metrics.n_directions is not None:
        evidence["n_directions"] = metrics.n_directions
        evidence["directions_when"] = (f"principal directions of the posterior means with "
                                       f"signal-to-noise > {INFORMATIVE_DIRECTION_SNR:g}")
        if n_active > 1.5 * metrics.n_directions:
            rotated = (f"; they span only {metrics.n_directions} informative directions (the "
                       "encoder spreads each factor over several axes)")
    active_when = evidence["active_when"]
    if n_active == 0:
        return Finding(
            codes.ACTIVE_UNITS, Severity.FAIL,
            f"0 of {n_latent} latent dimensions active ({active_when}): posterior collapse",
            evidence, fix_collapse(beta),
        )
    if n_active / n_latent < NEAR_COLLAPSE_ACTIVE_SHARE:
        return Finding(
            codes.POSTERIOR_COLLAPSE, Severity.FAIL,
            f"Posterior collapse: only {n_active} of {n_latent} latent dimensions active "
            f"({active_when}); the average KL per dimension can look healthy while the rest "
            "of the latent space is dead",
            evidence, fix_collapse(beta),
        )
    n_dead = n_latent - n_active
    if n_dead / n_latent >= PARTIAL_COLLAPSE_DEAD_SHARE:
        return Finding(
            codes.ACTIVE_UNITS, Severity.WARN,
            f"{n_active} of {n_latent} latent dimensions active: partial collapse{rotated}",
            evidence,
            f"If the data has about {n_active} independent factors this is expected: a smaller "
            f"latent space (--n-latent {n_active}) loses nothing. Otherwise give each dimension "
            f"free bits (--free-bits 0.1) or lower β ({lower_beta(beta)}).",
        )
    return Finding(
        codes.ACTIVE_UNITS, Severity.OK,
        f"{n_active} of {n_latent} latent dimensions active{rotated}",
        evidence,
    )


def _information(metrics: LatentMetrics, beta: float | None) -> Finding | None:
    """Posterior collapse measured on the encoder: the latent holds less than one bit.

    The rate (KL summed over latent dimensions, averaged over the cells) bounds I(x; z)
    from above; below ``COLLAPSE_RATE`` = log 2 nats the latent cannot hold one binary
    split of the cells. The MI estimate, where it is below its ceiling, measures I(x; z)
    itself; below log 2 the same holds. Returns None when neither is below.
    """
    rate, mi = metrics.rate, metrics.mi
    evidence: dict[str, float | int | str] = {
        "rate": num(rate), "mi": num(mi), "mi_ceiling": num(metrics.mi_ceiling),
        "threshold": num(COLLAPSE_RATE), "n_cells": metrics.n_cells,
        "units": "nats per cell",
    }
    if rate < COLLAPSE_RATE:
        title = (f"Posterior collapse: the rate, KL summed over latent dimensions, is "
                 f"{fmt(rate)} nats per cell < log 2 = {COLLAPSE_RATE:.2f}: I(x; z) ≤ rate, so the "
                 "latent holds less than one binary split of the cells")
    elif mi < min(COLLAPSE_RATE, metrics.mi_ceiling - MI_CEILING_MARGIN):
        title = (f"Posterior collapse: I(x; z) ≈ {fmt(mi)} nats < log 2 = {COLLAPSE_RATE:.2f} "
                 f"(rate {fmt(rate)}): the latent tells fewer than two groups of cells apart")
    else:
        return None
    return Finding(codes.POSTERIOR_COLLAPSE, Severity.FAIL, title, evidence, fix_collapse(beta))


def _probe_evidence(prefix: str, result: ProbeResult) -> dict[str, float | int | str]:
    return {
        f"{prefix}_logistic_balanced_accuracy": num(result.logistic.balanced_accuracy_mean),
        f"{prefix}_logistic_balanced_accuracy_sd": num(result.logistic.balanced_accuracy_std),
        f"{prefix}_knn_balanced_accuracy": num(result.knn.balanced_accuracy_mean),
        f"{prefix}_knn_balanced_accuracy_sd": num(result.knn.balanced_accuracy_std),
        f"{prefix}_logistic_accuracy": num(result.logistic.accuracy_mean),
        f"{prefix}_knn_accuracy": num(result.knn.accuracy_mean),
        f"{prefix}_logistic_unconverged_folds": result.logistic.n_folds_unconverged,
    }


def _probe_at_majority(
    metrics: LatentMetrics, probes: dict[str, ProbeResult], beta: float | None
) -> Finding:
    """Judge the sampled-z probe (what the decoder receives), else the means'."""
    which = "sample" if "sample" in probes else "mean"
    judged = probes[which]
    on = "z ~ q(z|x)" if which == "sample" else "posterior means"
    label = judged.label_name
    balanced, accuracy = judged.best_balanced_accuracy, judged.best_accuracy
    evidence: dict[str, float | int | str] = {
        "label": label,
        "probed": which,
        "n_cells": judged.n_cells,
        "n_classes": judged.n_classes,
        "n_folds": judged.n_folds,
        "majority_rate": num(judged.majority_rate),
        "chance_rate": num(judged.chance_rate),
        "tolerance": PROBE_CHANCE_TOLERANCE,
    }
    for name, result in probes.items():
        evidence.update(_probe_evidence(name, result))
    scores = (
        f"balanced accuracy {fmt(balanced)} vs chance {fmt(judged.chance_rate)}, accuracy "
        f"{fmt(accuracy)} vs majority rate {fmt(judged.majority_rate)}"
    )
    if balanced > judged.chance_rate + PROBE_CHANCE_TOLERANCE:
        return Finding(
            codes.PROBE_AT_MAJORITY, Severity.OK,
            f"Probe on {on}: {scores} — the latent carries {label} information", evidence,
        )
    if metrics.probe_warning is not None:
        return Finding(
            codes.PROBE_AT_MAJORITY, Severity.OK,
            f"Probe on {on}: {scores} — expected, {label} is a condition of the model",
            evidence,
        )
    title = f"Probe on {on}: {scores} — the latent carries no {label} information"
    recommendation = fix_collapse(beta)
    means = probes.get("mean")
    if which == "sample" and means is not None and (
        means.best_balanced_accuracy > means.chance_rate + PROBE_CHANCE_TOLERANCE
    ):
        recommendation = (
            f"The posterior means still separate {label} (balanced accuracy "
            f"{fmt(means.best_balanced_accuracy)}), but that structure is far smaller than the "
            f"posterior noise σ: the decoder never sees it. {fix_collapse(beta)}"
        )
    return Finding(codes.PROBE_AT_MAJORITY, Severity.FAIL, title, evidence, recommendation)


def _probe_below_pca(means: ProbeResult, pca: ProbeResult, beta: float | None) -> Finding:
    latent, baseline = means.best_balanced_accuracy, pca.best_balanced_accuracy
    evidence: dict[str, float | int | str] = {
        "label": means.label_name,
        "latent_balanced_accuracy": num(latent),
        "pca_balanced_accuracy": num(baseline),
        "n_components": pca.n_features,
        "margin": PROBE_PCA_MARGIN,
        **_probe_evidence("mean", means),
        **_probe_evidence("pca", pca),
    }
    versus = f"{fmt(latent)} vs PCA ({pca.n_features} components) {fmt(baseline)}"
    if latent < baseline - PROBE_PCA_MARGIN:
        return Finding(
            codes.PROBE_BELOW_PCA, Severity.WARN,
            f"Latent probes {means.label_name} worse than PCA: balanced accuracy {versus}",
            evidence, _fix_below_pca(beta),
        )
    return Finding(
        codes.PROBE_BELOW_PCA, Severity.OK,
        f"Latent probes {means.label_name} as well as PCA: balanced accuracy {versus}", evidence,
    )


def _mi_at_ceiling(metrics: LatentMetrics) -> Finding:
    mi, ceiling, n_cells = metrics.mi, metrics.mi_ceiling, metrics.mi_n_cells
    evidence: dict[str, float | int | str] = {
        "mi": num(mi), "ceiling": num(ceiling), "n_cells": n_cells, "margin": num(MI_CEILING_MARGIN),
    }
    if mi >= ceiling - MI_CEILING_MARGIN:
        return Finding(
            codes.MI_AT_CEILING, Severity.INFO,
            f"I(x; z) ≥ {fmt(mi)} nats: the estimate is at its ceiling log M = {fmt(ceiling)} "
            f"(M = {n_cells} cells), so it only bounds I(x; z) from below; use more cells to "
            "resolve it",
            evidence,
        )
    return Finding(
        codes.MI_AT_CEILING, Severity.INFO,
        f"I(x; z) ≈ {fmt(mi)} nats, below the estimate's ceiling log M = {fmt(ceiling)}",
        evidence,
    )


def _prior_mismatch(metrics: LatentMetrics) -> Finding:
    saturated = metrics.mi >= metrics.mi_ceiling - MI_CEILING_MARGIN
    relation = "≤" if saturated else "≈"
    evidence: dict[str, float | int | str] = {
        "prior_mismatch": num(metrics.prior_mismatch),
        "rate": num(metrics.rate),
        "mi": num(metrics.mi),
        "upper_bound": int(saturated),
    }
    return Finding(
        codes.PRIOR_MISMATCH, Severity.INFO,
        f"Prior mismatch KL(q(z) ‖ p(z)) {relation} {fmt(metrics.prior_mismatch)} nats = rate "
        f"{fmt(metrics.rate)} − I(x; z) {fmt(metrics.mi)} (Hoffman & Johnson 2016)",
        evidence,
    )


def _label_signal(metrics: LatentMetrics) -> str | None:
    """``"<label> probe B vs chance C"`` when the sampled-z probe finds label information."""
    if not metrics.probes:
        return None
    judged = metrics.probes.get("sample") or metrics.probes.get("mean")
    if judged is None or judged.best_balanced_accuracy <= judged.chance_rate + PROBE_CHANCE_TOLERANCE:
        return None
    return (f"{judged.label_name} probe balanced accuracy {fmt(judged.best_balanced_accuracy)} "
            f"vs chance {fmt(judged.chance_rate)}")


def latent_findings(
    metrics: LatentMetrics | Mapping[str, Any],
    heldout: Mapping[str, Any] | None = None,
    beta: float | None = None,
) -> list[Finding]:
    """Findings from one snapshot's latent measurements.

    Parameters
    ----------
    metrics
        :func:`~genevae.diagnosis.latent.compute_latent_metrics`'s result or its
        ``to_dict()`` form.
    heldout
        Held-out reconstruction of the model and of the no-latent baseline
        (:func:`~genevae.diagnosis.heldout.heldout_finding`), or None.
    beta
        The run's β, from which the fixes compute a lower one; None when unknown.

    Returns
    -------
    list[Finding]
        ``active_units``, the probe findings when labels were probed, then the
        informational ``mi_at_ceiling``, ``prior_mismatch``, ``label_silhouette`` and
        ``batch_mixing`` (the last two when measured).
    """
    if not isinstance(metrics, LatentMetrics):
        metrics = LatentMetrics.from_dict(metrics)
    findings = [_active_units(metrics, beta)]
    collapsed = _information(metrics, beta)
    if collapsed is not None:
        findings.append(collapsed)
    if heldout is not None:
        findings.append(heldout_finding(heldout, _label_signal(metrics)))
    if metrics.probes:
        findings.append(_probe_at_majority(metrics, metrics.probes, beta))
        if metrics.probe_warning is not None:
            findings.append(Finding(
                codes.PROBE_LABEL_IS_CONDITION, Severity.WARN,
                f"Probed label {metrics.label_name!r} is a condition of the model",
                {"label": str(metrics.label_name)}, metrics.probe_warning,
            ))
        elif metrics.pca_baseline is not None and "mean" in metrics.probes:
            findings.append(_probe_below_pca(metrics.probes["mean"], metrics.pca_baseline, beta))
    findings.append(_mi_at_ceiling(metrics))
    findings.append(_prior_mismatch(metrics))
    if metrics.silhouette is not None:
        findings.append(Finding(
            codes.LABEL_SILHOUETTE, Severity.INFO,
            f"Silhouette of {metrics.label_name} on the posterior means: "
            f"{fmt(metrics.silhouette)} (−1 to 1; 1 = compact, separate classes)",
            {"silhouette": num(metrics.silhouette), "label": str(metrics.label_name)},
        ))
    if metrics.batch_mixing is not None:
        findings.append(Finding(
            codes.BATCH_MIXING, Severity.INFO,
            f"Batch mixing on the posterior means: {fmt(metrics.batch_mixing)} "
            "(0 = batches separate, 1 = perfectly mixed)",
            {"batch_mixing": num(metrics.batch_mixing)},
        ))
    return findings
