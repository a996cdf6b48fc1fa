"""A trained model with its preprocessing: build, save, load, and encode cells with it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import torch

from genevae.config import RunConfig, build_config, config_to_dict
from genevae.data.batches import BatchSource
from genevae.data.preprocessor import Preprocessor
from genevae.errors import GenevaeError
from genevae.model.vae import VAE
from genevae.runfolder import RunFolder
from genevae.train.checkpoint import load_checkpoint, save_checkpoint

__all__ = [
    "CHECKPOINT_FORMAT",
    "EVAL_BATCH_SIZE",
    "FittedModel",
    "build_model",
    "model_description",
    "save_fitted",
    "load_fitted",
    "encode_tensors",
    "encode_batches",
    "encode",
]

CHECKPOINT_FORMAT = "genevae-checkpoint-1"
#: Eval-mode passes use this batch size (no gradients). genevae choice: a quarter of the
#: transient memory of 1,024 (~30 MB at 2,000 genes). 1,024 is faster per cell with the
#: count loss's C kernel (11.6 against 15.5 ms per 2,000 ZINB cells of 715 genes), ~2%
#: of a training epoch that evaluates 2,000 cells.
EVAL_BATCH_SIZE = 256


@dataclass
class FittedModel:
    """A trained model with the preprocessing it was trained with."""

    model: VAE
    preprocessor: Preprocessor
    config: RunConfig


def build_model(n_genes: int, n_categories: Sequence[int], preprocessor: Preprocessor,
                config: RunConfig) -> VAE:
    """The VAE for ``n_genes`` genes and conditions of ``n_categories`` under ``config.model``."""
    return VAE(n_genes=n_genes, n_categories=n_categories, config=config.model,
               target_sum=preprocessor.target_sum)


def model_description(
    preprocessor: Preprocessor, config: RunConfig, n_genes: int, n_categories: Sequence[int]
) -> dict[str, Any]:
    """The plain data stored beside the weights so that a checkpoint rebuilds its model."""
    return {
        "format": CHECKPOINT_FORMAT,
        "config": config_to_dict(config),
        "preprocessor": preprocessor.to_state(),
        "n_genes": n_genes,
        "n_categories": list(n_categories),
    }


def save_fitted(fitted: FittedModel, path: str | Path) -> None:
    """Write a loadable checkpoint of ``fitted`` (weights and model description)."""
    model = fitted.model
    state = model_description(fitted.preprocessor, fitted.config, model.n_genes, model.n_categories)
    save_checkpoint(path, {**state, "model": model.state_dict()})


def load_fitted(run_dir: str | Path, which: str = "best") -> FittedModel:
    """Load the ``best`` or ``last`` checkpoint of a run folder, or a checkpoint file."""
    path = Path(run_dir)
    if path.is_dir():
        run = RunFolder(path)
        path = run.best_checkpoint if which == "best" else run.last_checkpoint
        if which == "best" and not path.exists():
            path = run.last_checkpoint
    checkpoint = load_checkpoint(path)
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise GenevaeError(f"{path} is not a genevae checkpoint (no format tag).")
    config = build_config(checkpoint["config"], where=str(path))
    preprocessor = Preprocessor.from_state(checkpoint["preprocessor"])
    model = build_model(int(checkpoint["n_genes"]), [int(n) for n in checkpoint["n_categories"]],
                        preprocessor, config)
    model.load_state_dict(checkpoint["model"])
    model.eval()
    return FittedModel(model, preprocessor, config)


@torch.no_grad()
def encode_tensors(
    model: VAE, x: torch.Tensor, library: torch.Tensor, conditions: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances of prepared tensors, each (n_cells, n_latent)."""
    model.eval()
    means, logvars = [], []
    for start in range(0, x.shape[0], EVAL_BATCH_SIZE):
        part = slice(start, start + EVAL_BATCH_SIZE)
        mean, logvar = model.encode(x[part], library[part], conditions[part])
        means.append(mean)
        logvars.append(logvar)
    return torch.cat(means).numpy(), torch.cat(logvars).numpy()


@torch.no_grad()
def encode_batches(
    model: VAE, batches: BatchSource
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior means and log-variances (each (n_cells, n_latent)) and libraries (n_cells,)
    of the cells of unshuffled ``batches``, in their order (in memory or streamed)."""
    model.eval()
    means, logvars, libraries = [], [], []
    for batch in batches.epoch(0):
        mean, logvar = model.encode(batch.x, batch.library, batch.conditions)
        means.append(mean)
        logvars.append(logvar)
        libraries.append(batch.library)
    return torch.cat(means).numpy(), torch.cat(logvars).numpy(), torch.cat(libraries).numpy()


def encode(fitted: FittedModel, adata: ad.AnnData) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances of ``adata``'s cells, each (n_cells, n_latent)."""
    pre = fitted.preprocessor
    x, library = pre.transform_matrix(pre.select_genes(adata))
    conditions = torch.as_tensor(pre.encode_conditions(adata.obs), dtype=torch.long)
    return encode_tensors(fitted.model, torch.as_tensor(x), torch.as_tensor(library), conditions)
