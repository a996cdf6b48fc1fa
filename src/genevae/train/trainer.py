"""The training loop: AdamW, β schedule, per-epoch evaluation, checkpoints, faults.

One loop, no framework. Each epoch:

1. β for the epoch from the schedule (the model is told β, never the epoch);
2. one pass over the shuffled training batches in training mode, with gradient
   clipping; the objective's running average is kept;
3. train (a fixed subsample) and validation evaluated the same way, in eval mode;
4. one reference-format line, a history row, ``last`` (and ``best``) checkpoints;
5. the live diagnosis warns once at the epoch a problem appears.

Determinism: the batch order and every random draw of an epoch come from
generators seeded by ``(seed, epoch)``, so a run resumed from the checkpoint at
an epoch boundary reproduces the uninterrupted run exactly on CPU.

Faults: a non-finite loss stops at that step (no optimiser step is taken); the
last good checkpoint is kept, and the history gets a row for the diverged epoch
with NaN values. SIGINT/SIGTERM stop at the next step; the state of the last
completed epoch is on disk and the caller prints the ``--resume`` command.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from genevae.config import ObjectiveConfig, TrainConfig
from genevae.conventions import per_element_mean
from genevae.data.batches import BatchSource
from genevae.history.history import History, HistoryMeta
from genevae.history.logline import format_epoch_line
from genevae.model.networks import set_matmul_dtype
from genevae.runfolder import RunFolder
from genevae.train.adamw import FlatAdamW
from genevae.train.checkpoint import BackgroundWriter, save_checkpoint, snapshot
from genevae.train.controller import PIState, pi_kl_weight
from genevae.train.distributed import SINGLE_PROCESS, Distributed
from genevae.train.evaluate import evaluate
from genevae.train.flat import FlatParameters
from genevae.train.memory import keep_freed_memory
from genevae.train.precision import matmul_dtype, resolve_precision
from genevae.train.records import epoch_record
from genevae.train.schedules import kl_weight as scheduled_kl_weight

__all__ = ["Trainer", "TrainingResult", "TrainerState", "epoch_seed", "clip_gradients"]

StopReason = str  # "completed" | "early_stopping" | "diverged" | "interrupted"


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the random draws (dropout, sampling) of 0-based ``epoch``."""
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63)


@dataclass
class TrainerState:
    """Bookkeeping that must survive a checkpoint (besides weights and optimiser)."""

    epochs_done: int = 0
    best_val_loss: float = math.inf
    best_epoch: int = 0
    epochs_without_improvement: int = 0
    records: list[dict[str, float]] = field(default_factory=list)
    #: The KL controller's state (``--kl-target``); None when the schedule sets β.
    controller: PIState | None = None

    def to_dict(self) -> dict[str, Any]:
        controller = None if self.controller is None else [self.controller.integral,
                                                            self.controller.beta]
        return {
            "controller": controller,
            "epochs_done": self.epochs_done,
            "best_val_loss": self.best_val_loss,
            "best_epoch": self.best_epoch,
            "epochs_without_improvement": self.epochs_without_improvement,
            "records": self.records,
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> TrainerState:
        return cls(
            epochs_done=int(state["epochs_done"]),
            best_val_loss=float(state["best_val_loss"]),
            best_epoch=int(state["best_epoch"]),
            epochs_without_improvement=int(state["epochs_without_improvement"]),
            records=[dict(r) for r in state["records"]],
            controller=None if state.get("controller") is None
            else PIState(*(float(v) for v in state["controller"])),
        )


@dataclass
class TrainingResult:
    """What :meth:`Trainer.fit` returns."""

    history: History
    stop_reason: StopReason
    best_epoch: int
    diverged_epoch: int | None = None


class _StopSignal:
    """Turn SIGINT/SIGTERM into a flag checked between steps (main thread only)."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignal:
        if _in_main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


class Trainer:
    """Fit a VAE whose ``loss(x, library, conditions, kl_weight, free_bits, reduction)``
    returns a ``LossOutput``.

    Parameters
    ----------
    model
        The VAE module.
    objective, train
        Objective and optimisation settings.
    n_epochs
        Epochs to run in total (resolved; never 0).
    run
        Run folder for checkpoints, history and log; ``None`` keeps everything in memory.
    meta
        History meta (loss convention, sizes, schedule).
    checkpoint_extra
        Plain data stored in every checkpoint so it can rebuild the model
        (config, preprocessing state, sizes).
    on_epoch
        Called with the history after each epoch; returns lines to print (the live diagnosis).
    echo
        Where the per-epoch lines go (default: stdout).
    distributed
        This process's place in a DDP group (:mod:`genevae.train.distributed`); the
        model must already be on its device. Default: one process.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        objective: ObjectiveConfig,
        train: TrainConfig,
        n_epochs: int,
        run: RunFolder | None,
        meta: HistoryMeta,
        checkpoint_extra: Mapping[str, Any] | None = None,
        on_epoch: Callable[[History], list[str]] | None = None,
        echo: Callable[[str], None] | None = None,
        distributed: Distributed | None = None,
    ) -> None:
        self.model = model
        self.dist = distributed or SINGLE_PROCESS
        self.step_model = self.dist.wrap(model)  # what a training step calls: DDP or the model
        self.objective = objective
        self.train_config = train
        self.n_epochs = n_epochs
        self.run = run
        self.meta = meta
        self.checkpoint_extra = dict(checkpoint_extra or {})
        self.on_epoch = on_epoch
        self.echo = echo or (lambda line: print(line, flush=True))
        # bfloat16 products for the large layers in training mode (``--precision``)
        set_matmul_dtype(model, matmul_dtype(resolve_precision(train.precision, self.dist.device)))
        # One flat parameter for the optimiser and the clipping (a kernel each per step),
        # except under DDP, whose reducer owns the gradients of the separate tensors.
        self.flat = None if self.dist.enabled else FlatParameters(model)
        self.parameters = list(model.parameters()) if self.flat is None else [self.flat.parameter]
        # fused: one kernel for all parameters instead of ~10 tensor ops each per step;
        # FlatAdamW runs that kernel without importing torch._dynamo (1.0-1.4 s)
        self.optimizer: torch.optim.AdamW | FlatAdamW = (
            torch.optim.AdamW(self.parameters, lr=train.lr, weight_decay=train.weight_decay,
                              fused=True)
            if self.flat is None
            else FlatAdamW(self.flat.parameter, lr=train.lr, weight_decay=train.weight_decay)
        )
        self.state = TrainerState()
        self.writer = BackgroundWriter()  # checkpoints and history.csv, off the training path

    # -- checkpoints -------------------------------------------------------
    def checkpoint_state(self) -> dict[str, Any]:
        """Everything needed to resume: weights, optimiser, RNG, bookkeeping."""
        return {
            **self.checkpoint_extra,
            "model": self.model.state_dict(),
            # per parameter tensor, whatever the layout: resumable with or without DDP
            "optimizer": (self.optimizer.state_dict() if self.flat is None
                          else self.flat.optimizer_state(self.optimizer)),
            "rng_state": torch.get_rng_state(),
            "trainer": self.state.to_dict(),
        }

    def restore(self, checkpoint: Mapping[str, Any]) -> None:
        """Continue from a checkpoint written by :meth:`checkpoint_state`."""
        self.model.load_state_dict(checkpoint["model"])
        if self.flat is None:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
        else:
            self.flat.load_optimizer_state(self.optimizer, checkpoint["optimizer"])
        torch.set_rng_state(checkpoint["rng_state"])
        self.state = TrainerState.from_dict(checkpoint["trainer"])

    def _write_checkpoints(self, best: bool = False) -> None:
        """Queue ``last.pt`` (and with ``best`` ``best.pt``) of the state as it is now."""
        if self.run is not None:
            state = snapshot(self.checkpoint_state())
            if best:
                self.writer.submit(save_checkpoint, self.run.best_checkpoint, state)
            self.writer.submit(save_checkpoint, self.run.last_checkpoint, state)

    def _write_history(self) -> History:
        history = History.from_records(self.state.records, self.meta)
        if self.run is not None:
            self.writer.submit(history.to_csv, self.run.history)
        return history

    # -- the loop ----------------------------------------------------------
    def fit(
        self,
        train_batches: BatchSource,
        val_batches: BatchSource,
        train_eval_batches: BatchSource,
    ) -> TrainingResult:
        """Train from ``self.state.epochs_done`` to ``n_epochs``.

        ``train_eval_batches`` is the fixed training subsample evaluated in eval mode.
        """
        keep_freed_memory()  # steps reuse their buffers instead of page-faulting new ones
        try:
            return self._fit(train_batches, val_batches, train_eval_batches)
        finally:
            self.writer.flush()  # every checkpoint and history.csv on disk before returning

    def _fit(
        self,
        train_batches: BatchSource,
        val_batches: BatchSource,
        train_eval_batches: BatchSource,
    ) -> TrainingResult:
        if self.state.epochs_done == 0:
            self._write_checkpoints()  # a resumable state exists from the first step on
        stop_reason: StopReason = "completed"
        diverged_epoch = None
        show_bar = sys.stdout.isatty()
        with _StopSignal() as stop:
            for epoch in range(self.state.epochs_done, self.n_epochs):
                beta = self._epoch_kl_weight(epoch)
                torch.manual_seed(self.dist.seed(epoch_seed(self.train_config.seed, epoch)))
                started = time.perf_counter()
                outcome, running = self._train_epoch(train_batches, beta, epoch, stop, show_bar)
                running = self.dist.average(running, train_batches.n_cells)
                if self.state.controller is not None:
                    beta = self.state.controller.beta  # the β the epoch ended with
                if outcome == "interrupted":
                    stop_reason = "interrupted"
                    break
                if outcome == "diverged":
                    stop_reason, diverged_epoch = "diverged", epoch + 1
                    self.state.records.append(_diverged_record(epoch + 1, beta))
                    break
                train_metrics = evaluate(self.model, train_eval_batches, self.dist.all_reduce_sum)
                val_metrics = evaluate(self.model, val_batches, self.dist.all_reduce_sum)
                record = epoch_record(
                    epoch=epoch + 1,
                    kl_weight=beta,
                    lr=self.optimizer.param_groups[0]["lr"],
                    train=train_metrics,
                    val=val_metrics,
                    running=running,
                    n_genes=self.meta.n_genes or 1,
                    loss_reduction=self.objective.loss_reduction,
                    seconds=time.perf_counter() - started,
                    n_train_cells=train_batches.n_cells * self.dist.world_size,
                )
                if not all(math.isfinite(record[k]) for k in ("train_loss", "val_loss")):
                    stop_reason, diverged_epoch = "diverged", epoch + 1
                    self.state.records.append(record)
                    break
                self.state.records.append(record)
                self.state.epochs_done = epoch + 1
                improved = self._track_best(record)
                self.echo(format_epoch_line(record))
                if self.run is not None:
                    with open(self.run.log, "a", encoding="utf-8") as log:
                        log.write(format_epoch_line(record) + "\n")
                    self._write_checkpoints(best=improved)
                history = self._write_history()
                if self.on_epoch is not None:
                    for line in self.on_epoch(history):
                        self.echo(line)
                if self.dist.any(stop.received):
                    stop_reason = "interrupted"
                    break
                patience = self.train_config.early_stopping_patience
                if patience and self.state.epochs_without_improvement >= patience:
                    stop_reason = "early_stopping"
                    break
        history = self._write_history()
        return TrainingResult(history, stop_reason, self.state.best_epoch, diverged_epoch)

    def _epoch_kl_weight(self, epoch: int) -> float:
        """β at the start of ``epoch``: the schedule's, or the controller's current one."""
        if self.objective.kl_target is None:
            return scheduled_kl_weight(epoch, self.n_epochs, self.objective)
        if self.state.controller is None:
            self.state.controller = PIState(integral=self.objective.beta, beta=self.objective.beta)
        return self.state.controller.beta

    def _train_epoch(
        self,
        batches: BatchSource,
        beta: float,
        epoch: int,
        stop: _StopSignal,
        show_bar: bool,
    ) -> tuple[str, dict[str, float]]:
        """One pass in training mode.

        Returns ("ok" | "diverged" | "interrupted", running averages): the running
        averages of the objective, reconstruction and KL over the epoch's batches, in
        the run's loss convention, as the reference log's training numbers were made
        (dropout active, weights changing).
        """
        self.model.train()
        totals = self.dist.accumulator(3)  # objective, recon, kl (cell-weighted), on the device
        n_cells = 0
        mean = self.objective.loss_reduction == "mean"
        steps = batches.epoch(epoch)
        if show_bar:
            steps = tqdm(steps, total=len(batches), desc=f"epoch {epoch + 1:03d}", leave=False)
        clip = self.train_config.grad_clip
        for batch in steps:
            out = self.step_model(
                batch.x,
                batch.library,
                batch.conditions,
                kl_weight=beta,
                free_bits=self.objective.free_bits,
                reduction=self.objective.loss_reduction,
            )
            halt = self.dist.halt(stop.received, out.objective)  # the same on every rank
            if halt:
                return halt, {}
            if self.flat is None:
                self.optimizer.zero_grad(set_to_none=True)
                out.objective.backward()
            else:  # written into the flat gradient, which the parameters' .grad view
                self.flat.backward(out.objective)
            if clip:
                clip_gradients(self.parameters, clip)
            self.optimizer.step()
            if self.state.controller is not None:
                kl_per_dim = per_element_mean(self.dist.mean(out.kl_local.detach().mean()),
                                              self.model.n_latent)
                self.state.controller = pi_kl_weight(self.state.controller, kl_per_dim,
                                                     self.objective.kl_target)
                beta = self.state.controller.beta
            with torch.no_grad():
                recon, kl = out.reconstruction_loss.mean(), out.kl_local.mean()
                if mean:
                    recon = per_element_mean(recon, self.model.n_genes)
                    kl = per_element_mean(kl, self.model.n_latent)
                totals += torch.stack([out.objective.detach(), recon, kl]).to(totals.dtype) * len(batch)
            n_cells += len(batch)
        loss, recon, kl = (totals / max(n_cells, 1)).tolist()
        return "ok", {"loss": loss, "recon": recon, "kl": kl}

    def _track_best(self, record: Mapping[str, float]) -> bool:
        if record["val_loss"] < self.state.best_val_loss:
            self.state.best_val_loss = record["val_loss"]
            self.state.best_epoch = int(record["epoch"])
            self.state.epochs_without_improvement = 0
            return True
        self.state.epochs_without_improvement += 1
        return False


def clip_gradients(parameters: list[torch.Tensor], max_norm: float) -> None:
    """Scale the gradients to a total norm of at most ``max_norm``, as
    :func:`torch.nn.utils.clip_grad_norm_` does. On CPU the scaling pass is skipped on
    steps within the bound (with the per-cell sum the norm is 40-700, so at a bound of 10
    nearly every step scales); elsewhere reading the norm would wait for the device, so
    the gradients are always multiplied (by 1 when within bounds)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    # one tensor (the flat parameter): upstream's arithmetic without its per-device grouping
    flat = len(grads) == 1
    norm = torch.linalg.vector_norm(grads[0]) if flat else torch.nn.utils.get_total_norm(grads)
    # upstream's factor is min(1, max_norm / (norm + 1e-6)); NaN norms scale, as upstream
    if norm.device.type != "cpu" or not norm + 1e-6 <= max_norm:
        if flat:
            grads[0].mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))
        else:
            torch.nn.utils.clip_grads_with_norm_(parameters, max_norm, norm)


def _diverged_record(epoch: int, beta: float) -> dict[str, float]:
    """History row for an epoch stopped by a non-finite loss: NaN values, named epoch."""
    nan = math.nan
    row = {"epoch": epoch, "kl_weight": beta}
    for name in ("loss", "recon", "kl"):
        row[f"train_running_{name}"] = nan
    for split in ("train", "val"):
        for name in ("loss", "recon", "kl"):
            row[f"{split}_{name}"] = nan
    return row
