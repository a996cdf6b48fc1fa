"""Does the latent earn its keep on held-out cells?

The numbers are measured with the model by :mod:`genevae.train.heldout` (the VAE and
the no-latent baseline, :class:`~genevae.model.baseline.NoLatentBaseline`: library
size and conditions only, on the same held-out cells) and handed over as plain
values; this module only reads them. Code ``uninformative_latent``;
:func:`genevae.diagnosis.latent_findings.latent_findings` adds the finding when
held-out numbers are given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genevae.diagnosis import codes
from genevae.diagnosis.findings import Finding, Severity
from genevae.diagnosis.rules.common import fmt, num

__all__ = ["heldout_finding"]


def heldout_finding(heldout: Mapping[str, Any], label_signal: str | None = None) -> Finding:
    """Does the latent earn its keep on held-out cells?

    ``heldout`` holds, in nats per cell on the same held-out cells and in the model's
    reconstruction convention: ``model_recon`` and ``model_kl`` (the VAE's
    reconstruction and KL, so their sum is the negative ELBO), ``baseline_recon`` (the
    no-latent baseline's -log p(x | library, c)) and ``n_cells``. The latent is
    informative when gain = baseline_recon − model_recon exceeds model_kl, i.e. when
    the VAE's negative ELBO beats the baseline.

    When it does not, the finding fails: the latent memorises noise, or the model has
    not learned yet. ``label_signal`` (e.g. ``"cell_type probe 0.65 vs chance 0.25"``),
    given when a probe finds label information in the latent, points to the second:
    the finding then only warns and says to train longer.
    """
    recon, kl, base = (float(heldout[k]) for k in ("model_recon", "model_kl", "baseline_recon"))
    gain = base - recon
    n_cells = int(heldout["n_cells"])
    evidence: dict[str, float | int | str] = {
        "heldout_cells": n_cells,
        "model_recon": num(recon),
        "model_kl": num(kl),
        "baseline_recon": num(base),
        "gain": num(gain),
        "units": "nats per cell",
    }
    if gain > kl:
        return Finding(
            codes.UNINFORMATIVE_LATENT, Severity.OK,
            f"Latent earns its keep on held-out cells: reconstruction gain over the no-latent "
            f"baseline {fmt(gain)} > KL {fmt(kl)} nats per cell",
            evidence,
        )
    measured = (f"on {n_cells} held-out cells the latent gains {fmt(gain)} nats per cell of "
                f"reconstruction over a model with no latent (library size and conditions "
                f"only) but costs KL {fmt(kl)}")
    if label_signal is not None:
        evidence["label_signal"] = label_signal
        return Finding(
            codes.UNINFORMATIVE_LATENT, Severity.WARN,
            f"Latent not yet worth its KL: {measured}, although it carries label information "
            f"({label_signal}): the model is probably under-trained",
            evidence,
            "Train longer (more --epochs, or the default epoch count), then evaluate again.",
        )
    return Finding(
        codes.UNINFORMATIVE_LATENT, Severity.FAIL,
        f"Uninformative latent: {measured}: it memorises noise, or has not learned yet",
        evidence,
        "Check that the data has structure beyond library size and conditions (a shuffled or "
        "pure-noise matrix has none) and that training converged (see not_converged). "
        "Otherwise raise β (double --beta), shrink the decoder (halve --n-hidden) or stop "
        "earlier (--early-stopping-patience 5).",
    )
