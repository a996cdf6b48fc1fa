"""Lightning runs: :class:`~vae_torch.CountVAE` in a LightningModule, logged by
``CSVLogger`` (``lightning_logs/version_0/metrics.csv``) or ``TensorBoardLogger``.

Styles (what the module logs):

``csv_steps``   ``train_loss``, ``train_recon``, ``train_kl`` per step and per epoch
                (``*_step`` / ``*_epoch`` columns), ``val_loss``, ``val_recon``,
                ``val_kl`` per epoch, ``kl_weight``; ``log_every_n_steps=1``.
``csv_epoch``   ``loss``, ``recon_loss``, ``kl_loss``, ``val_loss``, ``val_kl_loss``
                per epoch only.
``tb_steps``    as ``csv_steps``, in TensorBoard event files.
``tb_epoch``    as ``csv_epoch``, in TensorBoard event files.

The trainer runs 2N epochs; when epoch N+1 starts, the logger is flushed and its
folder copied into the corpus: the log is what an N-epoch run would have written.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from bench_data import Dataset
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from measure import ModelView, Tracker
from runs import RunSpec, SourceResult
from torch.utils.data import DataLoader, TensorDataset
from train_loop import build_model, split_pool
from vae_torch import effective_kl_weight, kl_weight_at

__all__ = ["train_lightning", "LIGHTNING_STYLES"]

LIGHTNING_STYLES = ("csv_steps", "csv_epoch", "tb_steps", "tb_epoch")
_NAMES = {  # style family -> (loss, recon, kl) names as the module logs them
    "steps": ("train_loss", "train_recon", "train_kl"),
    "epoch": ("loss", "recon_loss", "kl_loss"),
}


class LitVAE(pl.LightningModule):
    def __init__(self, spec: RunSpec, n_genes: int) -> None:
        super().__init__()
        self.spec, self.vae = spec, build_model(spec, n_genes)
        s = spec.settings
        self.reduction = s.get("reduction", "sum")
        self.max_kl, self.warmup = s.get("max_kl_weight", 1.0), s.get("n_epochs_kl_warmup", 0)
        self.per_step = spec.style.endswith("steps")
        self.names = _NAMES["steps" if self.per_step else "epoch"]

    def _kl_weight(self) -> float:
        return kl_weight_at(self.current_epoch, self.max_kl, self.warmup)

    def training_step(self, batch, batch_idx):
        parts = self.vae.loss(batch[0], self._kl_weight(), self.reduction)
        for name, value in zip(self.names, (parts.loss, parts.recon, parts.kl), strict=True):
            self.log(name, value, on_step=self.per_step, on_epoch=True)
        if self.per_step:
            self.log("kl_weight", self._kl_weight(), on_step=False, on_epoch=True)
        return parts.loss

    def validation_step(self, batch, batch_idx):
        parts = self.vae.loss(batch[0], self._kl_weight(), self.reduction)
        self.log("val_loss", parts.loss)
        if self.per_step:
            self.log("val_recon", parts.recon)
            self.log("val_kl", parts.kl)
        else:
            self.log("val_kl_loss", parts.kl)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.spec.settings.get("lr", 1e-3))


class _Measure(pl.Callback):
    def __init__(self, tracker: Tracker, n_logged: int, logger, target: Path) -> None:
        self.tracker, self.n_logged, self.logger, self.target = tracker, n_logged, logger, target
        self.last: dict[str, float] = {}

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        if epoch == self.n_logged:
            self.last = {k: float(v) for k, v in trainer.callback_metrics.items()
                         if "loss" in k and not k.endswith("_step")}
        self.tracker.epoch_end(epoch, pl_module.vae)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.n_logged:
            self.logger.save()
            if isinstance(self.logger, TensorBoardLogger):
                self.logger.experiment.flush()
            shutil.copytree(self.logger.log_dir, self.target)


def train_lightning(spec: RunSpec, data: Dataset, folder: Path) -> SourceResult:
    """Train 2N epochs with a Lightning Trainer; copy the logger's folder at epoch N."""
    s = spec.settings
    pl.seed_everything(spec.seed, verbose=False)
    torch.set_num_threads(1)
    x_train, x_val = split_pool(data, spec.seed, s.get("n_train_cells"))
    module = LitVAE(spec, data.n_genes)
    target = effective_kl_weight(module.max_kl, module.reduction, data.n_genes, module.vae.n_latent)
    tracker = Tracker(ModelView(module.vae.posterior, module.vae.nll), torch.as_tensor(data.test.X),
                      data.test_labels, kl_weight=target, n_logged=spec.n_epochs)
    tracker.epoch_end(0, module.vae)
    batch_size = s.get("batch_size", 128)
    train = DataLoader(TensorDataset(x_train), batch_size=batch_size, shuffle=True,
                       generator=torch.Generator().manual_seed(spec.seed))
    val = DataLoader(TensorDataset(x_val), batch_size=batch_size)
    version_dir = folder / "lightning_logs" / "version_0"
    with tempfile.TemporaryDirectory() as scratch:
        logger_cls = TensorBoardLogger if spec.style.startswith("tb") else CSVLogger
        logger = logger_cls(scratch, name="lightning_logs", version=0)
        measure = _Measure(tracker, spec.n_epochs, logger, version_dir)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
            trainer = pl.Trainer(max_epochs=2 * spec.n_epochs, accelerator="cpu", devices=1,
                                 logger=logger, callbacks=[measure], log_every_n_steps=1,
                                 enable_progress_bar=False, enable_model_summary=False,
                                 enable_checkpointing=False, deterministic=True)
            trainer.fit(module, train, val)
    log_path = version_dir / "metrics.csv" if logger_cls is CSVLogger else version_dir
    return SourceResult.from_tracker(log_path, tracker, measure.last, n_genes=data.n_genes,
                                     kl_weight=target)
