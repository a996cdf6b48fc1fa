"""Every measurement of a latent space from one snapshot of encoder outputs.

Every measurement reads the posterior means ``qz_mean`` and log-variances
``qz_logvar`` of a diagonal Gaussian posterior q(z|x) = N(μ(x), diag σ²(x)), each
an array of shape (n_cells, n_latent) (:mod:`genevae.diagnosis.posterior`), and, for
the structure scores, labels of the cells. Nothing here touches a model or a trainer
(STYLE, "The shape of the house"). KL and mutual information are in nats per cell.

Which measurement answers which question:

- is each latent dimension used? :func:`~genevae.diagnosis.latent_units.kl_per_dim`,
  :func:`~genevae.diagnosis.latent_units.active_units`;
- how many directions does the latent really use?
  :func:`~genevae.diagnosis.latent_units.informative_directions` (rotation-invariant:
  a latent that spreads 20 factors over 64 axes has 64 active units but 20
  informative directions);
- how much does the latent say about the cell?
  :func:`~genevae.diagnosis.latent_information.mutual_information`;
- does the aggregate posterior fill the prior?
  :func:`~genevae.diagnosis.latent_information.prior_mismatch`;
- does the latent separate labels and mix batches?
  :func:`~genevae.diagnosis.latent_structure.silhouette_labels`,
  :func:`~genevae.diagnosis.latent_structure.batch_mixing`, and the probes in
  :mod:`genevae.diagnosis.probes`.

:func:`compute_latent_metrics` runs them all into one :class:`LatentMetrics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from numpy.typing import ArrayLike

from genevae.conventions import ACTIVE_UNIT_VARIANCE
from genevae.diagnosis.latent_information import mutual_information, prior_mismatch
from genevae.diagnosis.latent_structure import batch_mixing, silhouette_labels
from genevae.diagnosis.latent_units import (
    informative_directions,
    kl_per_dim_summary,
    posterior_mean_variance,
)
from genevae.diagnosis.posterior import check_posterior
from genevae.diagnosis.probes import (
    ProbeResult,
    pca_baseline,
    probe_condition_warning,
    probe_latent,
)

__all__ = ["LatentMetrics", "compute_latent_metrics"]


@dataclass(frozen=True)
class LatentMetrics:
    """Every latent-space measurement of one snapshot of encoder outputs.

    Attributes
    ----------
    n_cells, n_latent
        Size of the snapshot.
    n_active
        Dimensions with posterior-mean variance above
        :data:`~genevae.conventions.ACTIVE_UNIT_VARIANCE`.
    n_directions
        :func:`~genevae.diagnosis.latent_units.informative_directions`: the
        rotation-invariant count; ``None`` in metrics written before it existed.
    posterior_mean_variance
        (n_latent,) Var_x E_q[z_j|x]
        (:func:`~genevae.diagnosis.latent_units.posterior_mean_variance`).
    kl_per_dim_mean
        (n_latent,) mean over cells of each dimension's KL, nats per cell.
    rate
        Σ_j kl_per_dim_mean, nats per cell.
    mi, mi_ceiling, mi_n_cells
        I(x; z) estimate, its ceiling log M (nats) and M
        (:func:`~genevae.diagnosis.latent_information.mutual_information`).
    prior_mismatch
        rate − mi, nats (:func:`~genevae.diagnosis.latent_information.prior_mismatch`).
    probes
        ``{"mean": ..., "sample": ...}`` from :func:`genevae.diagnosis.probes.probe_latent`,
        or ``None`` without labels.
    pca_baseline
        The same probe on PCA of the log-normalised input, or ``None``.
    silhouette
        :func:`~genevae.diagnosis.latent_structure.silhouette_labels` of the posterior
        means, or ``None``.
    batch_mixing
        :func:`~genevae.diagnosis.latent_structure.batch_mixing` of the posterior means,
        or ``None``.
    label_name
        The probed label column, or ``None``.
    probe_warning
        :func:`genevae.diagnosis.probes.probe_condition_warning`'s message when the
        probed label is a condition of the model, else ``None``.
    """

    n_cells: int
    n_latent: int
    n_active: int
    posterior_mean_variance: tuple[float, ...]
    kl_per_dim_mean: tuple[float, ...]
    rate: float
    mi: float
    mi_ceiling: float
    mi_n_cells: int
    prior_mismatch: float
    probes: dict[str, ProbeResult] | None = None
    pca_baseline: ProbeResult | None = None
    silhouette: float | None = None
    batch_mixing: float | None = None
    label_name: str | None = None
    probe_warning: str | None = None
    n_directions: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values; :meth:`from_dict` reads them back."""
        out = asdict(self)
        out["posterior_mean_variance"] = list(self.posterior_mean_variance)
        out["kl_per_dim_mean"] = list(self.kl_per_dim_mean)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatentMetrics:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        values["posterior_mean_variance"] = tuple(values["posterior_mean_variance"])
        values["kl_per_dim_mean"] = tuple(values["kl_per_dim_mean"])
        if values.get("probes") is not None:
            values["probes"] = {k: ProbeResult.from_dict(v) for k, v in values["probes"].items()}
        if values.get("pca_baseline") is not None:
            values["pca_baseline"] = ProbeResult.from_dict(values["pca_baseline"])
        return cls(**values)


def compute_latent_metrics(
    qz_mean: ArrayLike,
    qz_logvar: ArrayLike,
    labels: ArrayLike | None = None,
    batches: ArrayLike | None = None,
    x_lognorm: ArrayLike | None = None,
    seed: int = 0,
    *,
    label_name: str = "labels",
    condition_keys: Sequence[str] = (),
) -> LatentMetrics:
    """Run every latent measurement on one snapshot of encoder outputs.

    Parameters
    ----------
    qz_mean, qz_logvar
        (n_cells, n_latent) posterior means and log-variances.
    labels
        (n_cells,) classes to probe and score the silhouette of (e.g. cell types).
    batches
        (n_cells,) batches, for :func:`~genevae.diagnosis.latent_structure.batch_mixing`.
    x_lognorm
        (n_cells, n_genes) log-normalised input, for the PCA baseline; needs ``labels``.
    seed
        Seeds the MI estimate, the sampled-z probe, the folds and the PCA.
    label_name
        Name of the ``labels`` column, for messages and the condition check.
    condition_keys
        The model's condition columns (:func:`~genevae.diagnosis.probes.probe_condition_warning`).
    """
    mean, logvar = check_posterior(qz_mean, qz_logvar)
    if x_lognorm is not None and labels is None:
        raise ValueError("x_lognorm is only used by the PCA baseline probe, which needs labels")
    kl = kl_per_dim_summary(mean, logvar)
    variance = posterior_mean_variance(mean)
    mi = mutual_information(mean, logvar, seed=seed)
    probes = baseline = silhouette = warning = None
    if labels is not None:
        probes = probe_latent(mean, logvar, labels, seed=seed, label_name=label_name)
        silhouette = silhouette_labels(mean, labels, seed=seed, label_name=label_name)
        warning = probe_condition_warning(label_name, condition_keys)
        if x_lognorm is not None:
            baseline = pca_baseline(
                x_lognorm, mean.shape[1], labels, seed=seed, label_name=label_name
            )
    mixing = None if batches is None else batch_mixing(mean, batches)
    return LatentMetrics(
        n_cells=mean.shape[0],
        n_latent=mean.shape[1],
        n_active=int((variance > ACTIVE_UNIT_VARIANCE).sum()),
        posterior_mean_variance=tuple(float(v) for v in variance),
        kl_per_dim_mean=tuple(float(v) for v in kl.mean),
        rate=kl.rate,
        mi=mi.value,
        mi_ceiling=mi.ceiling,
        mi_n_cells=mi.n_cells,
        prior_mismatch=prior_mismatch(kl.rate, mi.value),
        probes=probes,
        pca_baseline=baseline,
        silhouette=silhouette,
        batch_mixing=mixing,
        label_name=None if labels is None else label_name,
        probe_warning=warning,
        n_directions=informative_directions(mean, logvar),
    )
