"""Conventions every layer shares: the model and trainer write by them, the diagnosis reads by them.

Two things are fixed here, so that a number means the same wherever it is computed:

- when a latent dimension counts as active (:data:`ACTIVE_UNIT_VARIANCE`);
- the reference document's loss convention, ``loss_reduction="mean"``: per-element
  means instead of per-cell sums, reconstruction averaged over genes and KL over
  latent dimensions (:func:`per_element_mean`), which weighs KL by
  ``n_genes / n_latent`` relative to the true per-cell ELBO (:func:`effective_beta`).

Nothing here imports from genevae; the functions take floats, numpy arrays or
tensors alike.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["ACTIVE_UNIT_VARIANCE", "per_element_mean", "effective_beta"]

#: A latent dimension is active when the variance over cells of its posterior
#: mean exceeds this (Burda et al. 2015, "Importance Weighted Autoencoders").
ACTIVE_UNIT_VARIANCE = 1e-2

Summed = TypeVar("Summed")


def per_element_mean(total: Summed, n_elements: int) -> Summed:
    """A per-cell sum as the reference document's per-element mean: ``total / n_elements``.

    The mean convention averages reconstruction over the ``n_genes`` genes and KL
    over the ``n_latent`` latent dimensions::

        recon_mean = per_element_mean(recon_sum, n_genes)
        kl_mean = per_element_mean(kl_sum, n_latent)

    Parameters
    ----------
    total
        Nats per cell summed over the elements: a float, or an array or tensor of
        any shape (e.g. (n_epochs,)).
    n_elements
        Genes (reconstruction) or latent dimensions (KL), > 0.

    Returns
    -------
    The same type and shape as ``total``, nats per element.
    """
    return total / n_elements


def effective_beta(beta: float, n_genes: int, n_latent: int) -> float:
    """β relative to the true per-cell ELBO for a mean-reduced loss.

    ``recon_mean + β · kl_mean = (recon_sum + β · n_genes / n_latent · kl_sum) / n_genes``,
    so the effective weight of the summed KL is ``β · n_genes / n_latent`` (reference
    README, "Facts about that example run": 0.5 · 2000 / 64 ≈ 15.6). At β = 1 it is
    the factor by which the mean convention multiplies any β.
    """
    return beta * n_genes / n_latent
