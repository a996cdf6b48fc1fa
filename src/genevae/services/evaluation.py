"""The measurements of ``genevae evaluate``: a fitted model's latent space and held-out
evidence on prepared cells.

The model-side numbers (encoder outputs, IWAE bound, no-latent baseline, traversal)
are computed with :mod:`genevae.train.heldout`; the latent measurements come from
:mod:`genevae.diagnosis`. Nothing here draws or writes: the command does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from genevae.conventions import ACTIVE_UNIT_VARIANCE
from genevae.data.batches import InMemoryBatches
from genevae.data.io import read
from genevae.data.preprocess import PreparedData
from genevae.data.split import split_indices, subsample_indices
from genevae.data.streaming import BackedData, backed_cells
from genevae.diagnosis.latent import compute_latent_metrics
from genevae.services.fitted import EVAL_BATCH_SIZE, FittedModel, encode_batches
from genevae.train.evaluate import evaluate
from genevae.train.heldout import (
    fit_no_latent_baseline,
    importance_weighted_bound,
    latent_traversal,
    mean_reconstruction_loss,
)

__all__ = ["IWAE_SAMPLES", "IWAE_MAX_CELLS", "BASELINE_MAX_CELLS", "BACKED_LATENT_MAX_CELLS",
           "TRAVERSAL_TOP_GENES", "Cells", "Measured", "load_cells", "measure"]

#: Importance samples of the IWAE bound (Burda et al. 2015 use 5,000; 100 is within
#: a few hundredths of a nat of it on the tests' data and 50x cheaper).
IWAE_SAMPLES = 100
#: Held-out cells the IWAE bound is computed on (its cost is samples x cells x genes).
IWAE_MAX_CELLS = 1_000  # genevae choice
_IWAE_BATCH = 16
#: Training cells the no-latent baseline is fitted on (a seeded subsample beyond).
BASELINE_MAX_CELLS = 5_000  # genevae choice: a per-gene linear model needs few cells
#: Cells the latent measurements use when the cells are streamed (a seeded subsample
#: beyond): the probes and the PCA baseline need their input in memory.
BACKED_LATENT_MAX_CELLS = 20_000  # genevae choice: 20,000 x 2,000 genes is 160 MB of float32
#: Genes listed per active dimension in the traversal.
TRAVERSAL_TOP_GENES = 10

#: Prepared cells, in memory or streamed from a backed ``.h5ad``.
Cells = PreparedData | BackedData


@dataclass(frozen=True)
class Measured:
    """What :func:`measure` found.

    Attributes
    ----------
    metrics
        The ``metrics.json`` document.
    means
        (n_cells, n_latent) posterior means of every cell.
    measured
        (n_measured,) the cells the latent measurements used (all, or a seeded
        subsample when streamed).
    """

    metrics: dict[str, Any]
    means: np.ndarray
    measured: np.ndarray


def load_cells(
    fitted: FittedModel, path: str, layer: str | None, training_file: bool, backed: bool,
    chunk_size: int,
) -> tuple[pd.DataFrame, Cells]:
    """``(obs, cells)``: every cell of ``path`` prepared with the run's preprocessing,
    in memory or streamed from disk."""
    pre, config = fitted.preprocessor, fitted.config
    if backed:
        return backed_cells(path, layer, pre, chunk_size)
    adata = read(path, layer=layer,
                 transpose=config.data.transpose if training_file else False,
                 sample_sheet=config.data.sample_sheet if training_file else None)
    x, library = pre.transform_matrix(pre.select_genes(adata))
    cells = PreparedData(
        x=torch.as_tensor(x), library=torch.as_tensor(library),
        conditions=torch.as_tensor(pre.encode_conditions(adata.obs), dtype=torch.long),
        labels=None, obs_names=np.asarray(adata.obs_names, dtype=str),
        n_categories=tuple(len(c) for c in pre.condition_categories),
    )
    return adata.obs, cells


def _in_memory(cells: Cells, indices: np.ndarray, batch_size: int, shuffle: bool,
               seed: int = 0) -> InMemoryBatches:
    """Batches over a few cells held in memory (read from disk when streamed)."""
    if isinstance(cells, PreparedData):
        return cells.batches(indices, batch_size, shuffle, seed)
    x, library = cells.tensors(indices)
    return InMemoryBatches(x, library, cells.conditions[torch.as_tensor(indices)],
                           np.arange(len(indices)), batch_size, shuffle, seed)


def _heldout(fitted: FittedModel, cells: Cells, train_idx: np.ndarray, val_idx: np.ndarray,
             seed: int) -> dict[str, Any]:
    """The model's and the no-latent baseline's reconstruction on the held-out cells."""
    model = fitted.model
    val = cells.batches(val_idx, EVAL_BATCH_SIZE, False)
    split = evaluate(model, val)
    fit_cells = subsample_indices(train_idx, BASELINE_MAX_CELLS, seed)
    baseline = fit_no_latent_baseline(_in_memory(cells, fit_cells, 256, True, seed),
                                      model.n_categories, model.likelihood, model.fixed_variance,
                                      seed)
    return {
        "n_cells": int(len(val_idx)),
        "model_recon": split.recon,
        "model_kl": split.kl,
        "baseline_recon": mean_reconstruction_loss(baseline, val),
        "baseline_fit_cells": int(len(fit_cells)),
        "units": "nats per cell, the model's reconstruction convention",
    }


def measure(
    fitted: FittedModel,
    obs: pd.DataFrame,
    cells: Cells,
    path: str,
    label: str | None,
    labels: np.ndarray | None,
    batch: str | None,
    batches: np.ndarray | None,
    n_importance: int = IWAE_SAMPLES,
    backed: bool = False,
) -> Measured:
    """Measure ``fitted``'s latent space on ``cells`` (``obs`` their annotations).

    The held-out cells are the run's validation split of ``cells`` (seeded, stratified
    by the run's label); ``labels`` and ``batches`` (per cell, or None) are probed and
    scored for mixing. With ``backed`` the latent measurements use a seeded subsample
    of at most :data:`BACKED_LATENT_MAX_CELLS` cells.

    Every draw is seeded with the run's seed, on a forked random state: the numbers do
    not depend on what ran before in the process (training, for ``genevae train``),
    and the caller's random state is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(fitted.config.train.seed)
        return _measure(fitted, obs, cells, path, label, labels, batch, batches, n_importance,
                        backed)


def _measure(fitted: FittedModel, obs: pd.DataFrame, cells: Cells, path: str,
             label: str | None, labels: np.ndarray | None, batch: str | None,
             batches: np.ndarray | None, n_importance: int, backed: bool) -> Measured:
    config, pre = fitted.config, fitted.preprocessor
    n_cells, seed = cells.n_cells, config.train.seed
    every_cell = np.arange(n_cells)
    means, logvars, library_np = encode_batches(
        fitted.model, cells.batches(every_cell, EVAL_BATCH_SIZE, False))
    measured = (subsample_indices(every_cell, BACKED_LATENT_MAX_CELLS, seed) if backed
                else every_cell)
    x_lognorm = None
    if labels is not None:
        x_np, measured_library = (tensor.numpy() for tensor in cells.tensors(measured))
        x_lognorm = x_np if fitted.model.likelihood == "gaussian" else np.log1p(
            x_np / np.maximum(measured_library, 1e-12)[:, None] * pre.target_sum)
    latent = compute_latent_metrics(means[measured], logvars[measured],
                                    None if labels is None else labels[measured],
                                    None if batches is None else batches[measured],
                                    x_lognorm, seed=seed, label_name=label or "labels",
                                    condition_keys=config.data.condition_keys)
    split_labels = (obs[config.data.label_key].astype(str).to_numpy()
                    if config.data.label_key and config.data.label_key in obs else None)
    train_idx, val_idx = split_indices(n_cells, config.data.val_fraction, seed, split_labels)
    heldout = _heldout(fitted, cells, train_idx, val_idx, seed)
    iwae_cells = subsample_indices(val_idx, IWAE_MAX_CELLS, seed)
    iwae = importance_weighted_bound(
        fitted.model, _in_memory(cells, iwae_cells, _IWAE_BATCH, False), n_importance, seed)
    variance = np.asarray(latent.posterior_mean_variance)
    active = [int(j) for j in np.argsort(-variance) if variance[j] > ACTIVE_UNIT_VARIANCE]
    conditions = cells.conditions
    codes = conditions.mode(dim=0).values.numpy() if conditions.shape[1] else np.zeros(0, int)
    traversal = latent_traversal(fitted.model, active, float(np.median(library_np)), codes,
                                 pre.gene_names, TRAVERSAL_TOP_GENES)
    metrics = {
        "data": {"path": path, "n_cells": int(n_cells), "n_genes": int(cells.n_genes),
                 "label": label, "batch": batch, "backed": backed,
                 "n_cells_measured": int(len(measured))},
        "latent": latent.to_dict(),
        "heldout": heldout,
        "iwae": {"iwae": iwae.iwae, "elbo": iwae.elbo, "gap": iwae.gap,
                 "n_importance": iwae.n_importance, "n_cells": iwae.n_cells,
                 "units": "nats per cell (exact log-likelihood)"},
        "traversal": {str(j): [{"gene": g, "change": c} for g, c in genes]
                      for j, genes in traversal.items()},
    }
    return Measured(metrics, means, measured)
