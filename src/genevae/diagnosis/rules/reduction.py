"""The loss convention's effect on β (reference facts).

Averaging reconstruction over genes and KL over latent dimensions (the reference
convention, ``loss_reduction="mean"``) weighs KL ``n_genes / n_latent`` times more
than the true per-cell ELBO does: the reference run's β = 0.5 with 2,000 genes
and 64 latent dimensions is an effective β of about 15.6. With a
negative-binomial decoder on PBMC counts the same convention collapsed the
posterior completely.
"""

from __future__ import annotations

from genevae.conventions import effective_beta
from genevae.diagnosis import codes
from genevae.diagnosis.findings import Finding, Severity
from genevae.diagnosis.rules.common import FIX_LOSS_REDUCTION, num
from genevae.diagnosis.thresholds import EFFECTIVE_BETA_WARN
from genevae.diagnosis.units import max_beta
from genevae.history.history import History

__all__ = ["effective_beta_rule"]


def effective_beta_rule(history: History) -> list[Finding]:
    """Effective β of a mean-reduced loss; warn above ``EFFECTIVE_BETA_WARN``.

    Reads ``kl_weight`` (its maximum) and the meta ``n_genes``, ``n_latent``. Returns
    [] for other conventions or when β or a size is unknown.
    """
    meta = history.meta
    beta = max_beta(history)
    if meta.loss_reduction != "mean" or beta is None or not meta.n_genes or not meta.n_latent:
        return []
    value = effective_beta(beta, meta.n_genes, meta.n_latent)
    formula = f"{beta:g} × {meta.n_genes} / {meta.n_latent} = {value:.3g}"
    evidence: dict[str, float | int | str] = {
        "series": "kl_weight",
        "beta": num(beta),
        "n_genes": meta.n_genes,
        "n_latent": meta.n_latent,
        "effective_beta": num(value),
        "threshold": EFFECTIVE_BETA_WARN,
    }
    if value <= EFFECTIVE_BETA_WARN:
        return [Finding(
            codes.EFFECTIVE_BETA, Severity.OK,
            f"Effective β relative to the true ELBO: {formula} (mean reduction)", evidence,
        )]
    same_weight = meta.n_latent / meta.n_genes
    return [Finding(
        codes.EFFECTIVE_BETA, Severity.WARN,
        f"Mean reduction inflates β: effective β = {formula} relative to the true ELBO",
        evidence,
        f"{FIX_LOSS_REDUCTION} Or keep the mean reduction with β = n_latent / n_genes "
        f"(--beta {same_weight:.2g}), which weighs KL as the true ELBO does.",
        int(history.epochs[0]),
    )]
