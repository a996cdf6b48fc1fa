"""End-to-end runs: data -> model -> train -> history -> diagnose -> plot / report.

The CLI and the Python API both call these functions; they hold the sequence,
each step lives in its own layer.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anndata as ad
import h5py
import numpy as np
import torch

from genevae.config import (
    MAX_EVAL_TRAIN_CELLS,
    RunConfig,
    apply_preset,
    build_config,
    config_to_dict,
    config_to_toml,
)
from genevae.data.batches import BatchSource
from genevae.data.io import read, write_h5ad
from genevae.data.preprocess import PreparedData, Preprocessor, looks_like_counts, prepare
from genevae.data.simulate import simulate_bulk, simulate_sc
from genevae.data.split import split_indices, subsample_indices
from genevae.data.streaming import BackedData, backed_cells, open_backed, prepare_backed, scan
from genevae.diagnosis.engine import diagnose
from genevae.diagnosis.findings import Diagnosis
from genevae.diagnosis.live import LiveMonitor
from genevae.diagnosis.render import render_json, render_text
from genevae.errors import GenevaeError
from genevae.files import atomic_write, atomic_write_text
from genevae.history.history import CONTROLLED_SCHEDULE, History, HistoryMeta
from genevae.history.readers import read_history
from genevae.model.vae import VAE
from genevae.plot.curves import plot_curves, save_figure
from genevae.runfolder import RunFolder
from genevae.train.checkpoint import load_checkpoint, save_checkpoint
from genevae.train.distributed import SINGLE_PROCESS, Distributed, launch
from genevae.train.precision import resolve_precision
from genevae.train.trainer import Trainer, TrainingResult

__all__ = [
    "FittedModel",
    "RunResult",
    "default_n_epochs",
    "fit",
    "fit_prepared",
    "train_run",
    "resume_run",
    "load_fitted",
    "save_fitted",
    "encode",
    "encode_tensors",
    "encode_batches",
    "embed_file",
    "simulate_to_files",
    "run_demo",
    "diagnose_log",
    "write_diagnosis_files",
]

log = logging.getLogger(__name__)

#: Cap and cell budget of the default epoch count, after scvi-tools' heuristic
#: ``min(400, round(20000 / n_cells * 400))``.
MAX_DEFAULT_EPOCHS = 400
DEFAULT_EPOCH_CELL_BUDGET = 20_000 * 400
#: Eval-mode passes use this batch size (no gradients). genevae choice: a quarter of the
#: transient memory of 1,024 (~30 MB at 2,000 genes). 1,024 is faster per cell with the
#: count loss's C kernel (11.6 against 15.5 ms per 2,000 ZINB cells of 715 genes), ~2%
#: of a training epoch that evaluates 2,000 cells.
EVAL_BATCH_SIZE = 256
#: The files a run writes; ``--overwrite`` removes exactly these.
_RUN_ENTRIES = ("config.toml", "history.csv", "train.log", "checkpoints", "curves.png",
                "diagnosis.txt", "diagnosis.json", "metrics.json", "report.html", "figures")

Echo = Callable[[str], None]
#: Cells in memory (:class:`PreparedData`) or streamed from a backed ``.h5ad`` (:class:`BackedData`).
Prepared = PreparedData | BackedData


def _print(line: str) -> None:
    print(line, flush=True)


def _silent(line: str) -> None:
    """The echo of ranks other than 0: only rank 0 prints."""


@dataclass
class FittedModel:
    """A trained model with the preprocessing it was trained with."""

    model: VAE
    preprocessor: Preprocessor
    config: RunConfig


@dataclass
class RunResult:
    """Outcome of :func:`train_run`."""

    fitted: FittedModel
    training: TrainingResult
    diagnosis: Diagnosis
    run: RunFolder | None


def default_n_epochs(n_cells: int) -> int:
    """Epochs when none are given: ``min(400, round(8e6 / n_cells))``, at least 1."""
    return max(1, min(MAX_DEFAULT_EPOCHS, round(DEFAULT_EPOCH_CELL_BUDGET / n_cells)))


def build_model(prepared: Prepared, preprocessor: Preprocessor, config: RunConfig) -> VAE:
    """The VAE for ``prepared`` data under ``config.model``."""
    return VAE(
        n_genes=prepared.n_genes,
        n_categories=prepared.n_categories,
        config=config.model,
        target_sum=preprocessor.target_sum,
    )


def _split(config: RunConfig, prepared: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """The run's training and validation indices (seeded, stratified by the label)."""
    return split_indices(
        prepared.n_cells, config.data.val_fraction, config.train.seed, prepared.labels
    )


def _check_batch_size(config: RunConfig, n_train: int) -> None:
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


CHECKPOINT_FORMAT = "genevae-checkpoint-1"


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


def fit(
    adata: ad.AnnData,
    config: RunConfig,
    run: RunFolder | None = None,
    echo: Echo = _print,
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
    echo: Echo = _print,
    resume_from: dict[str, Any] | None = None,
    distributed: Distributed | None = None,
) -> tuple[FittedModel, TrainingResult]:
    """Train on data prepared by :func:`genevae.data.preprocess.prepare` (in memory) or
    :func:`genevae.data.streaming.prepare_backed` (streamed).

    ``resume_from`` is a checkpoint to continue from. With ``distributed``, this
    process trains on its shard of the training cells (pass ``run`` and ``echo`` on
    rank 0 only); the returned model is on the CPU.
    """
    dist = distributed or SINGLE_PROCESS
    train_idx, val_idx = _split(config, prepared)
    n_epochs = config.train.epochs or default_n_epochs(len(train_idx))
    _check_batch_size(config, len(train_idx))
    _check_hyperparameters(config, n_epochs)
    batch_size = dist.local_batch_size(config.train.batch_size)
    torch.manual_seed(config.train.seed)
    model = build_model(prepared, preprocessor, config).to(dist.device)
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


def prepare_run_folder(out: Path, overwrite: bool) -> RunFolder:
    """Check ``out`` may receive a run; with ``overwrite``, remove a previous run's files."""
    if out.exists() and not out.is_dir():
        raise GenevaeError(f"--out {out} is a file; give a folder for the run.")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise GenevaeError(
                f"--out {out} already holds files (a previous run?). Choose another folder, "
                "or pass --overwrite to replace that run."
            )
        for name in _RUN_ENTRIES:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return RunFolder(out)


def finish_run(run: RunFolder | None, history: History, echo: Echo = _print) -> Diagnosis:
    """Diagnose the history, print it, and write the curves and diagnosis files."""
    diagnosis = diagnose(history)
    if run is not None and len(history):
        save_figure(plot_curves(history), run.curves)
        text = write_diagnosis_files(run, diagnosis)
    else:
        text = render_text(diagnosis)
    echo("")
    echo(text)
    return diagnosis


def write_diagnosis_files(run: RunFolder, diagnosis: Diagnosis) -> str:
    """Write the run's diagnosis.txt and diagnosis.json (atomically); returns the text."""
    text = render_text(diagnosis)
    atomic_write_text(run.diagnosis, text + "\n")
    atomic_write_text(run.diagnosis_json, render_json(diagnosis) + "\n")
    return text


def diagnose_log(
    path: str | Path,
    format: str = "auto",
    column_map: dict[str, str] | None = None,
    n_latent: int | None = None,
    n_genes: int | None = None,
    loss_reduction: str | None = None,
) -> Diagnosis:
    """Read any tool's training log (see :func:`~genevae.history.readers.read_history`)
    and diagnose it; the diagnosis reads the history alone, never a model."""
    history = read_history(path, format=format, column_map=column_map, n_latent=n_latent,
                           n_genes=n_genes, loss_reduction=loss_reduction)
    return diagnose(history)


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


def read_and_prepare(config: RunConfig) -> tuple[RunConfig, Preprocessor, Prepared]:
    """Read ``config.data.path`` and prepare it; returns the config with the likelihood resolved.

    With ``config.data.backed`` the matrix stays on disk: one streaming pass computes
    what the preprocessing needs, and training streams the cells chunk by chunk.
    """
    if config.data.backed:
        matrix = open_backed(config.data)
        matrix_scan = scan(matrix, config.data.chunk_size)
        config = _resolve_likelihood(config, matrix_scan.is_counts)
        return (config, *prepare_backed(matrix, matrix_scan, config.data, config.model.likelihood))
    adata = read(config.data.path, layer=config.data.layer, transpose=config.data.transpose,
                 sample_sheet=config.data.sample_sheet)
    config = resolve_likelihood(adata, config)
    return (config, *prepare(adata, config.data, config.model.likelihood))


def train_run(
    config: RunConfig, out: str | Path, overwrite: bool = False, echo: Echo = _print,
    report: bool = True, auto_fix: bool = False, max_attempts: int = 3,
) -> RunResult:
    """Read ``config.data.path``, train, and write a complete run folder at ``out``.

    The data are read and validated before anything is written. With ``report``, a
    finished run is evaluated (latent measurements, held-out evidence) and its
    ``report.html`` written. With ``auto_fix``, attempts go to ``out/attempt_<k>``,
    each with the remedy the previous one's diagnosis calls for
    (:mod:`genevae.autofix`), until one is healthy or ``max_attempts`` are done.
    """
    if auto_fix:
        from genevae.autofix import auto_fix_run

        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise GenevaeError("--auto-fix runs its attempts in one process; drop --auto-fix "
                               "under torchrun, or run it without torchrun.")
        if max_attempts < 1:
            raise GenevaeError(f"--max-attempts {max_attempts}: use at least 1.")
        out = Path(out)
        if out.is_dir() and any(out.iterdir()) and not overwrite:
            raise GenevaeError(f"--out {out} already holds files; choose another folder, or pass "
                               "--overwrite to replace them.")
        return auto_fix_run(config, out, True, max_attempts, echo,
                            lambda cfg, folder, ow, say: train_run(cfg, folder, ow, say, True))
    with launch(config.train.device) as dist:
        config, preprocessor, prepared = read_and_prepare(config)  # validated before any write
        _check_batch_size(config, len(_split(config, prepared)[0]))  # before anything is written
        dist.local_batch_size(config.train.batch_size)
        if not dist.is_main:
            fitted, training = fit_prepared(preprocessor, prepared, config, None, _silent,
                                            distributed=dist)
            return RunResult(fitted, training, diagnose(training.history), None)
        run = prepare_run_folder(Path(out), overwrite)
        atomic_write_text(run.config, config_to_toml(config))
        run.log.write_text("", encoding="utf-8")
        echo(f"run folder: {run.root}")
        fitted, training = fit_prepared(preprocessor, prepared, config, run, echo,
                                        distributed=dist)
        atomic_write_text(run.config, config_to_toml(fitted.config))
        return _conclude(fitted, training, run, echo, report)


def _conclude(
    fitted: FittedModel, training: TrainingResult, run: RunFolder, echo: Echo, report: bool
) -> RunResult:
    if training.stop_reason == "interrupted":
        echo(f"\ninterrupted: the state after epoch {len(training.history)} is saved in "
             f"{run.last_checkpoint}; continue with:\n  genevae train --resume {run.root}")
    elif training.stop_reason == "diverged":
        echo(f"\nstopped: the loss became non-finite in epoch {training.diverged_epoch}; the last "
             f"good checkpoint is {run.last_checkpoint}.")
    elif training.stop_reason == "early_stopping":
        echo(f"\nearly stopping: no better validation loss since epoch {training.best_epoch}.")
    finished = training.stop_reason in ("completed", "early_stopping")
    if report and finished and len(training.history):
        # evaluation reads the run folder this module writes: imported here, not at the top
        from genevae.evaluation import evaluate_run, report_run, write_diagnosis

        echo("")
        evaluate_run(run.root, echo=echo)
        echo("")
        diagnosis = write_diagnosis(run, echo=echo)
        echo(f"\nreport: {report_run(run.root)}")
    else:
        diagnosis = finish_run(run, training.history, echo)
    echo(f"\nrun folder: {run.root}")
    return RunResult(fitted, training, diagnosis, run)


def resume_run(run_dir: str | Path, echo: Echo = _print, report: bool = True) -> RunResult:
    """Continue the run in ``run_dir`` from its last checkpoint."""
    run = RunFolder(Path(run_dir))
    checkpoint = load_checkpoint(run.last_checkpoint)
    config = build_config(checkpoint["config"], where=str(run.last_checkpoint))
    with launch(config.train.device) as dist:
        config, preprocessor, prepared = read_and_prepare(config)
        done = int(checkpoint["trainer"]["epochs_done"])
        if not dist.is_main:
            fitted, training = fit_prepared(preprocessor, prepared, config, None, _silent,
                                            checkpoint, distributed=dist)
            return RunResult(fitted, training, diagnose(training.history), None)
        echo(f"resuming {run.root} after epoch {done} of {config.train.epochs}")
        _truncate_log(run, done)
        fitted, training = fit_prepared(preprocessor, prepared, config, run, echo, checkpoint,
                                        distributed=dist)
        return _conclude(fitted, training, run, echo, report)


def _truncate_log(run: RunFolder, n_epochs: int) -> None:
    """Keep the first ``n_epochs`` lines of train.log (a killed run may have written more)."""
    lines = run.log.read_text(encoding="utf-8").splitlines() if run.log.exists() else []
    atomic_write_text(run.log, "".join(line + "\n" for line in lines[:n_epochs]))


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
    model = VAE(int(checkpoint["n_genes"]), [int(n) for n in checkpoint["n_categories"]],
                config.model, target_sum=preprocessor.target_sum)
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


def simulate_to_files(
    kind: str, out: Path, seed: int = 0, n_cells: int | None = None, n_genes: int | None = None
) -> list[Path]:
    """Write ``simulate bulk`` (continuous and counts) or ``simulate sc`` files into ``out``."""
    sizes: dict[str, int] = {}
    if n_genes is not None:
        sizes["n_genes"] = n_genes
    if kind == "bulk":
        if n_cells is not None:
            sizes["n_samples"] = n_cells
        continuous, counts = simulate_bulk(seed=seed, **sizes)
        outputs = {out / "bulk_continuous.h5ad": continuous, out / "bulk_counts.h5ad": counts}
    else:
        if n_cells is not None:
            sizes["n_cells"] = n_cells
        outputs = {out / "sc_counts.h5ad": simulate_sc(seed=seed, **sizes)}
    for path, adata in outputs.items():
        write_h5ad(adata, path)
    return list(outputs)


def embed_file(
    run_dir: str | Path, data: str | Path, out: str | Path, layer: str | None = None,
    overwrite: bool = False, backed: bool | None = None, chunk_size: int | None = None,
) -> Path:
    """Encode the cells of ``data`` with the run's model; write ``obsm["X_genevae"]`` to ``out``.

    With ``backed`` the matrix (``X`` or ``layer``, CSR) is encoded ``chunk_size`` cells at
    a time (default: the run's chunk size) and ``out`` is a copy of the file with
    ``obsm["X_genevae"]`` added, so neither step loads the matrix.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise GenevaeError(f"--out {out} exists; choose another file or pass --overwrite.")
    fitted = load_fitted(run_dir)
    if backed:
        chunk_size = chunk_size or fitted.config.data.chunk_size
        _, cells = backed_cells(str(data), layer, fitted.preprocessor, chunk_size)
        with cells.matrix:
            all_cells = np.arange(cells.n_cells)
            qz_mean, _, _ = encode_batches(fitted.model, cells.batches(all_cells, EVAL_BATCH_SIZE,
                                                                       False))
        with atomic_write(out) as tmp:
            shutil.copyfile(data, tmp)
            with h5py.File(tmp, "r+") as handle:
                obsm = handle.require_group("obsm")
                if "X_genevae" in obsm:
                    del obsm["X_genevae"]
                ad.io.write_elem(obsm, "X_genevae", qz_mean)
        return out
    adata = read(data, layer=layer)
    qz_mean, _ = encode(fitted, adata)
    adata.obsm["X_genevae"] = qz_mean
    write_h5ad(adata, out)
    return out


#: The demo's model: the reference preset, conditioned like the reference cVAE.
DEMO_CONDITIONS = ("tissue", "disease", "batch")


def run_demo(out: Path, epochs: int = 30, echo: Echo = _print, report: bool = True) -> RunResult:
    """Simulate the reference design, train the reference preset on it, diagnose."""
    echo(f"simulating bulk RNA-seq (reference design) into {out / 'data'}")
    paths = simulate_to_files("bulk", out / "data")
    sections = apply_preset("reference")
    sections["data"] = {"path": str(paths[0].resolve()), "condition_keys": DEMO_CONDITIONS}
    sections["train"]["epochs"] = epochs
    config = build_config(sections, where="demo")
    return train_run(config, out / "run", overwrite=True, echo=echo, report=report)
