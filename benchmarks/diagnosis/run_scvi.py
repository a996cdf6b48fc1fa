"""scvi-tools 1.4.2 ``SCVI`` runs: train 2N epochs, export the first N epochs' history_.

The user's export is ``pd.concat(model.history_.values(), axis=1)`` written as CSV
(``history.csv``) or JSON (``history.json``, pandas' ``to_json``, or
``history_dict.json``, a dict of lists). Nothing in scvi-tools' training depends on
``max_epochs`` (KL warm-up counts epochs from 0 against ``n_epochs_kl_warmup``, no
learning-rate schedule, no early stopping), so epochs 1..N of a 2N run are the N-epoch
run; ``check_truncation.py`` checks this.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import scvi
import torch
from bench_data import Dataset
from measure import ModelView, Tracker
from runs import RunSpec, SourceResult

__all__ = ["train_scvi", "history_frame"]

#: scvi-tools' own split of the pool, as in the brief of issue 18.
TRAIN_SIZE = 0.9


class _TrackerCallback(pl.Callback):
    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.tracker.epoch_end(trainer.current_epoch + 1, pl_module.module)


def _view(module) -> ModelView:
    def posterior(x: torch.Tensor):
        batch = torch.zeros(x.shape[0], 1, dtype=torch.long)
        qz = module._regular_inference(x, batch)["qz"]
        return qz.loc, qz.scale

    def nll(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        batch = torch.zeros(x.shape[0], 1, dtype=torch.long)
        library = torch.log(x.sum(1, keepdim=True))
        px = module.generative(z, library, batch, y=torch.zeros_like(batch))["px"]
        return -px.log_prob(x).sum(-1)

    return ModelView(posterior, nll)


def history_frame(model) -> pd.DataFrame:
    """``model.history_`` as a user concatenates it: one row per epoch."""
    return pd.concat(model.history_.values(), axis=1)


def _export(frame: pd.DataFrame, style: str, folder: Path) -> Path:
    if style == "csv":
        path = folder / "history.csv"
        frame.to_csv(path)
    elif style == "json_pandas":
        path = folder / "history.json"
        frame.to_json(path)
    elif style == "json_lists":
        path = folder / "history_dict.json"
        path.write_text(json.dumps({c: frame[c].tolist() for c in frame.columns}, indent=1))
    else:
        raise ValueError(f"unknown scvi export style {style!r}")
    return path


def train_scvi(spec: RunSpec, data: Dataset, folder: Path) -> SourceResult:
    """Train ``SCVI`` for 2N epochs on the pool, measuring the test cells every epoch."""
    s = dict(spec.settings)
    scvi.settings.seed = spec.seed
    torch.set_num_threads(1)
    adata = data.pool.copy()
    if "n_pool_cells" in s:  # a tiny-data run: a seeded subsample of the pool
        keep = np.random.default_rng(spec.seed).choice(adata.n_obs, s["n_pool_cells"], replace=False)
        adata = adata[np.sort(keep)].copy()
    scvi.model.SCVI.setup_anndata(adata)
    model = scvi.model.SCVI(
        adata,
        n_latent=s.get("n_latent", 10),
        n_hidden=s.get("n_hidden", 128),
        n_layers=s.get("n_layers", 1),
        gene_likelihood=s.get("gene_likelihood", "zinb"),
    )
    plan = {k: s[k] for k in ("lr", "max_kl_weight", "n_epochs_kl_warmup") if k in s}
    tracker = Tracker(_view(model.module), torch.as_tensor(data.test.X), data.test_labels,
                      kl_weight=plan.get("max_kl_weight", 1.0), n_logged=spec.n_epochs)
    tracker.epoch_end(0, model.module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
        model.train(
            max_epochs=2 * spec.n_epochs, accelerator="cpu", devices=1,
            train_size=TRAIN_SIZE, check_val_every_n_epoch=1, plan_kwargs=plan,
            batch_size=s.get("batch_size", 128), callbacks=[_TrackerCallback(tracker)],
            enable_progress_bar=False, enable_model_summary=False,
        )
    frame = history_frame(model)
    logged = frame.iloc[: spec.n_epochs]
    path = _export(logged, spec.style, folder)
    last = logged.iloc[-1]
    last_losses = {c: float(last[c]) for c in logged.columns if "loss" in c or "elbo" in c}
    if not last_losses:
        raise RuntimeError(f"{spec.run_id}: history_ has no loss column")
    return SourceResult.from_tracker(path, tracker, last_losses,
                                     n_genes=data.n_genes, kl_weight=tracker.kl_weight)
