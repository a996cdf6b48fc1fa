"""Fit a VAE to prepared cells: the split, the epoch count, the model and the trainer."""

from __future__ import annotations

import logging
from dataclasses import replace

import anndata as ad
import numpy as np
import torch

from genevae.config import MAX_EVAL_TRAIN_CELLS, RunConfig
from genevae.data.preprocess import prepare
from genevae.data.preprocessor import Preprocessor
from genevae.data.split import split_indices, subsample_indices
from genevae.diagnosis.live import LiveMonitor
from genevae.errors import GenevaeError
from genevae.history.history import CONTROLLED_SCHEDULE, HistoryMeta
from genevae.runfolder import RunFolder
from genevae.services.echo import Echo, print_line
from genevae.services.fitted import EVAL_BATCH_SIZE, FittedModel, build_model, model_description
from genevae.services.inputs import Prepared, resolve_likelihood
from genevae.train.distributed import SINGLE_PROCESS, Distributed
from genevae.train.precision import resolve_precision
from genevae.train.trainer import Trainer, TrainingResult

__all__ = ["default_n_epochs", "split_cells", "check_batch_size", "fit", "fit_prepared"]

log = logging.getLogger(__name__)

#: Cap and cell budget of the default epoch count, after scvi-tools' heuristic
#: ``min(400, round(20000 / n_cells * 400))``.
MAX_DEFAULT_EPOCHS = 400
DEFAULT_EPOCH_CELL_BUDGET = 20_000 * 400


def default_n_epochs(n_cells: int) -> int:
    """Epochs when none are given: ``min(400, round(8e6 / n_cells))``, at least 1."""
    return max(1, min(MAX_DEFAULT_EPOCHS, round(DEFAULT_EPOCH_CELL_BUDGET / n_cells)))


def split_cells(config: RunConfig, prepared: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """The run's training and validation indices (seeded, stratified by the label)."""
    return split_indices(
        prepared.n_cells, config.data.val_fraction, config.train.seed, prepared.labels
    )


def check_batch_size(config: RunConfig, n_train: int) -> None:
    """Refuse a batch larger than the training cells, naming a size that fits."""
    if config.train.batch_size > n_train:
        raise GenevaeError(
            f"--batch-size {config.train.batch_size} is larger than the {n_train} training "
            f"cells; use --batch-size {max(1, n_train // 4)} or smaller."
        )


def _check_hyperparameters(config: RunConfig, n_epochs: int) -> None:
    schedule = config.objective.kl_schedule
    if schedule in ("linear", "sigmoid") and config.objective.warmup_epochs > n_epochs:
        log.warning(
            "--warmup-epochs %d is longer than the run (%d epochs): β never reaches %g; "
            "the KL will be judged only where β is stable.",
            config.objective.warmup_epochs, n_epochs, config.objective.beta,
        )


def fit(
    adata: ad.AnnData,
    config: RunConfig,
    run: RunFolder | None = None,
    echo: Echo = print_line,
) -> tuple[FittedModel, TrainingResult]:
    """Prepare ``adata``, build the VAE and train it under ``config``.

    With ``run`` set, checkpoints, ``history.csv`` and ``train.log`` are written
    there as training goes.
    """
    config = resolve_likelihood(adata, config)
    preprocessor, prepared = prepare(adata, config.data, config.model.likelihood)
    return fit_prepared(preprocessor, prepared, config, run, echo)


def fit_prepared(
    preprocessor: Preprocessor,
    prepared: Prepared,
    config: RunConfig,
    run: RunFolder | None = None,
    echo: Echo = print_line,
    resume_from: dict | None = None,
    distributed: Distributed | None = None,
) -> tuple[FittedModel, TrainingResult]:
    """Train on data prepared by :func:`genevae.data.preprocess.prepare` (in memory) or
    :func:`genevae.data.streaming.prepare_backed` (streamed).

    ``resume_from`` is a checkpoint to continue from. With ``distributed``, this
    process trains on its shard of the training cells (pass ``run`` and ``echo`` on
    rank 0 only); the returned model is on the CPU.
    """
    dist = distributed or SINGLE_PROCESS
    train_idx, val_idx = split_cells(config, prepared)
    n_epochs = config.train.epochs or default_n_epochs(len(train_idx))
    check_batch_size(config, len(train_idx))
    _check_hyperparameters(config, n_epochs)
    batch_size = dist.local_batch_size(config.train.batch_size)
    torch.manual_seed(config.train.seed)
    model = build_model(prepared.n_genes, prepared.n_categories, preprocessor,
                        config).to(dist.device)
    seed, device = config.train.seed, dist.device
    train_shard = dist.shard(train_idx, equal=True)
    if dist.enabled and len(train_shard) * dist.world_size < len(train_idx):
        log.info("distributed: %d training cells left out so that the %d processes get %d each.",
                 len(train_idx) - len(train_shard) * dist.world_size, dist.world_size,
                 len(train_shard))
    train_batches = prepared.batches(train_shard, batch_size, True, seed, device)
    val_batches = prepared.batches(dist.shard(val_idx, equal=False), EVAL_BATCH_SIZE, False,
                                   device=device)
    n_eval_train = config.train.n_eval_train_cells
    if n_eval_train is None:  # as precise as the validation average
        n_eval_train = min(MAX_EVAL_TRAIN_CELLS, len(val_idx) or MAX_EVAL_TRAIN_CELLS)
    eval_cells = subsample_indices(train_idx, n_eval_train, seed)
    train_eval_batches = prepared.batches(dist.shard(eval_cells, equal=False), EVAL_BATCH_SIZE,
                                          False, device=device)
    meta = HistoryMeta(
        source="genevae",
        loss_reduction=config.objective.loss_reduction,
        n_genes=prepared.n_genes,
        n_latent=config.model.n_latent,
        kl_schedule=(CONTROLLED_SCHEDULE if config.objective.kl_target is not None
                     else config.objective.kl_schedule),
    )
    precision = resolve_precision(config.train.precision, dist.device)
    resolved = replace(config, train=replace(config.train, epochs=n_epochs, precision=precision,
                                             n_eval_train_cells=n_eval_train))
    extra = model_description(preprocessor, resolved, prepared.n_genes, prepared.n_categories)
    monitor = LiveMonitor()
    trainer = Trainer(model, resolved.objective, resolved.train, n_epochs, run, meta, extra,
                      on_epoch=monitor.update if dist.is_main else None, echo=echo,
                      distributed=dist)
    if resume_from is not None:
        trainer.restore(resume_from)
    result = trainer.fit(train_batches, val_batches, train_eval_batches)
    return FittedModel(model.cpu(), preprocessor, resolved), result
