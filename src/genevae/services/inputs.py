"""A run's input: read the data file once, resolve the likelihood, prepare the cells."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import anndata as ad
import pandas as pd

from genevae.config import RunConfig
from genevae.data.io import read
from genevae.data.preprocess import PreparedData, prepare
from genevae.data.preprocessor import Preprocessor
from genevae.data.streaming import BackedData, open_backed, prepare_backed, scan
from genevae.data.values import looks_like_counts

__all__ = ["Prepared", "Inputs", "read_and_prepare", "resolve_likelihood"]

log = logging.getLogger(__name__)

#: Cells in memory (:class:`PreparedData`) or streamed from a backed ``.h5ad`` (:class:`BackedData`).
Prepared = PreparedData | BackedData


@dataclass(frozen=True)
class Inputs:
    """The prepared input of a run.

    Attributes
    ----------
    config
        The run's configuration with the likelihood resolved.
    preprocessor
        The preprocessing fitted on the data.
    prepared
        The kept cells, in memory or streamed.
    obs
        ``.obs`` of the kept cells in the order of ``prepared`` (in memory), so that the
        run's evaluation needs no second read of the file; None when streamed.
    """

    config: RunConfig
    preprocessor: Preprocessor
    prepared: Prepared
    obs: pd.DataFrame | None


def resolve_likelihood(adata: ad.AnnData, config: RunConfig) -> RunConfig:
    """Replace ``likelihood="auto"`` by ``nb`` for integer counts, ``gaussian`` otherwise."""
    if config.model.likelihood != "auto":
        return config
    return _resolve_likelihood(config, looks_like_counts(adata.X))


def _resolve_likelihood(config: RunConfig, is_counts: bool) -> RunConfig:
    if config.model.likelihood != "auto":
        return config
    likelihood = "nb" if is_counts else "gaussian"
    log.info("likelihood: %s (the values %s integer counts); set --likelihood to change it",
             likelihood, "are" if likelihood == "nb" else "are not")
    return replace(config, model=replace(config.model, likelihood=likelihood))


def read_and_prepare(config: RunConfig) -> Inputs:
    """Read ``config.data.path`` once and prepare it (likelihood resolved in the config).

    With ``config.data.backed`` the matrix stays on disk: one streaming pass computes
    what the preprocessing needs, and training streams the cells chunk by chunk.
    """
    if config.data.backed:
        matrix = open_backed(config.data)
        matrix_scan = scan(matrix, config.data.chunk_size)
        config = _resolve_likelihood(config, matrix_scan.is_counts)
        preprocessor, prepared = prepare_backed(matrix, matrix_scan, config.data,
                                                config.model.likelihood)
        return Inputs(config, preprocessor, prepared, None)
    adata = read(config.data.path, layer=config.data.layer, transpose=config.data.transpose,
                 sample_sheet=config.data.sample_sheet)
    config = resolve_likelihood(adata, config)
    preprocessor, prepared = prepare(adata, config.data, config.model.likelihood)
    return Inputs(config, preprocessor, prepared, adata.obs.loc[prepared.obs_names])
