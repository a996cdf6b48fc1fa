"""A plain PyTorch training loop for :class:`~vae_torch.CountVAE` (2N epochs).

The loop is what a user's script does: a 90/10 train/validation split of the pool,
shuffled mini-batches, Adam or SGD, a linear KL warm-up, validation every epoch.
What it prints is left to a :class:`Printer` (``line_styles.py``), which is called
only for the first N epochs: the log is the N-epoch script's log, and the last N
epochs exist only for the truth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from bench_data import Dataset
from measure import ModelView, Tracker
from runs import RunSpec, SourceResult
from vae_torch import CountVAE, effective_kl_weight, kl_weight_at

__all__ = ["train_loop", "EpochMetrics", "Printer", "build_model"]

VALIDATION_FRACTION = 0.1


@dataclass(frozen=True)
class EpochMetrics:
    """Batch-mean losses of one epoch, in the run's reduction (``vae_torch``).

    ``epoch`` is 1-based; ``step`` counts optimiser steps so far; ``seconds`` is the
    epoch's wall time.
    """

    epoch: int
    n_epochs: int
    step: int
    n_batches: int
    seconds: float
    kl_weight: float
    train_loss: float
    train_recon: float
    train_kl: float
    val_loss: float
    val_recon: float
    val_kl: float


class Printer(Protocol):
    """Writes the log; ``on_step`` is called after every optimiser step."""

    def on_step(self, epoch: int, step: int, loss: float, recon: float, kl: float) -> None: ...

    def on_epoch(self, m: EpochMetrics) -> None: ...

    def close(self) -> None: ...


def build_model(spec: RunSpec, n_genes: int) -> CountVAE:
    s = spec.settings
    return CountVAE(n_genes, n_latent=s.get("n_latent", 10), n_hidden=s.get("n_hidden", 128),
                    n_layers=s.get("n_layers", 1), decoder=s.get("decoder", "nb"),
                    decoder_hidden=s.get("decoder_hidden"), decoder_layers=s.get("decoder_layers"),
                    dropout=s.get("dropout", 0.0))


def _optimizer(spec: RunSpec, model: torch.nn.Module) -> torch.optim.Optimizer:
    s = spec.settings
    if s.get("optimizer", "adam") == "sgd":
        return torch.optim.SGD(model.parameters(), lr=s.get("lr", 1e-3), momentum=0.9)
    return torch.optim.Adam(model.parameters(), lr=s.get("lr", 1e-3))


def split_pool(data: Dataset, seed: int, n_train_cells: int | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and validation counts of the pool (a user's own 90/10 split); with
    ``n_train_cells``, only that many training cells are kept (tiny-data runs)."""
    x = torch.as_tensor(data.pool.X)
    order = np.random.default_rng(seed).permutation(x.shape[0])
    n_val = max(1, int(round(VALIDATION_FRACTION * x.shape[0])))
    train = order[n_val:] if n_train_cells is None else order[n_val : n_val + n_train_cells]
    return x[np.sort(train)], x[np.sort(order[:n_val])]


@torch.no_grad()
def _evaluate(model: CountVAE, x: torch.Tensor, kl_weight: float, reduction: str):
    model.eval()
    parts = model.loss(x, kl_weight, reduction)
    model.train()
    return float(parts.loss), float(parts.recon), float(parts.kl)


def train_loop(spec: RunSpec, data: Dataset, printer: Printer, log_path: Path) -> SourceResult:
    """Train 2N epochs; print the first N through ``printer``; measure every epoch."""
    s = spec.settings
    torch.manual_seed(spec.seed)
    x_train, x_val = split_pool(data, spec.seed, s.get("n_train_cells"))
    model = build_model(spec, data.n_genes)
    optimizer = _optimizer(spec, model)
    reduction = s.get("reduction", "sum")
    max_kl, warmup = s.get("max_kl_weight", 1.0), s.get("n_epochs_kl_warmup", 0)
    batch_size = s.get("batch_size", 128)
    target = effective_kl_weight(max_kl, reduction, data.n_genes, model.n_latent)
    tracker = Tracker(ModelView(model.posterior, model.nll), torch.as_tensor(data.test.X),
                      data.test_labels, kl_weight=target, n_logged=spec.n_epochs)
    tracker.epoch_end(0, model)
    generator = torch.Generator().manual_seed(spec.seed)
    n_batches = -(-x_train.shape[0] // batch_size)
    step, last = 0, {}
    for epoch in range(1, 2 * spec.n_epochs + 1):
        logging = epoch <= spec.n_epochs
        kl_weight = kl_weight_at(epoch - 1, max_kl, warmup)
        start = time.perf_counter()
        sums = np.zeros(3)
        for batch in torch.randperm(x_train.shape[0], generator=generator).split(batch_size):
            parts = model.loss(x_train[batch], kl_weight, reduction)
            optimizer.zero_grad()
            parts.loss.backward()
            optimizer.step()
            step += 1
            values = (parts.loss.item(), parts.recon.item(), parts.kl.item())
            sums += values
            if logging:
                printer.on_step(epoch, step, *values)
        val = _evaluate(model, x_val, kl_weight, reduction)
        if logging:
            train = [float(v) for v in sums / n_batches]
            m = EpochMetrics(epoch, spec.n_epochs, step, n_batches, time.perf_counter() - start,
                             kl_weight, *train, *val)
            printer.on_epoch(m)
            last = {"train_loss": m.train_loss, "val_loss": m.val_loss}
            if epoch == spec.n_epochs:
                printer.close()
        tracker.epoch_end(epoch, model)
    return SourceResult.from_tracker(log_path, tracker, last, n_genes=data.n_genes,
                                     kl_weight=target)
