"""Look inside a trained run: latent measurements, held-out evidence, figures, report.

``genevae evaluate RUN`` calls :func:`evaluate_run`, ``genevae report RUN`` calls
:func:`report_run`; ``genevae train`` calls both at the end unless ``--no-report``.
The model-side numbers (encoder outputs, IWAE bound, no-latent baseline, traversal)
are computed here with :mod:`genevae.train.heldout`; the measurements and findings
come from :mod:`genevae.diagnose`, the pictures from :mod:`genevae.plot`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from genevae.conventions import ACTIVE_UNIT_VARIANCE
from genevae.data.batches import InMemoryBatches
from genevae.data.io import read
from genevae.data.preprocess import PreparedData, obs_labels
from genevae.data.split import split_indices, subsample_indices
from genevae.data.streaming import BackedData, backed_cells
from genevae.diagnosis.embedding import embed_2d
from genevae.diagnosis.engine import diagnose
from genevae.diagnosis.findings import Diagnosis
from genevae.diagnosis.latent import compute_latent_metrics
from genevae.diagnosis.latent_findings import latent_findings
from genevae.diagnosis.units import max_beta
from genevae.errors import GenevaeError
from genevae.files import atomic_write_text
from genevae.history.history import History
from genevae.plot.curves import plot_curves, save_figure
from genevae.plot.latent import (
    plot_kl_heatmap,
    plot_latent_scatter,
    plot_probes,
    plot_rate_distortion,
)
from genevae.report.page import write_report
from genevae.runfolder import RunFolder
from genevae.train.evaluate import evaluate
from genevae.train.heldout import (
    fit_no_latent_baseline,
    importance_weighted_bound,
    latent_traversal,
    mean_reconstruction_loss,
)
from genevae.workflow import (
    EVAL_BATCH_SIZE,
    FittedModel,
    encode_batches,
    load_fitted,
    write_diagnosis_files,
)

__all__ = ["evaluate_run", "report_run", "write_diagnosis", "IWAE_SAMPLES", "IWAE_MAX_CELLS",
           "BASELINE_MAX_CELLS", "BACKED_LATENT_MAX_CELLS"]

log = logging.getLogger(__name__)
Echo = Callable[[str], None]

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


def _print(line: str) -> None:
    print(line, flush=True)


def evaluate_run(
    run_dir: str | Path,
    data: str | Path | None = None,
    label: str | None = None,
    batch: str | None = None,
    layer: str | None = None,
    n_importance: int = IWAE_SAMPLES,
    embedding: str = "umap",
    echo: Echo = _print,
    backed: bool | None = None,
    chunk_size: int | None = None,
) -> dict[str, Any]:
    """Measure the latent space of ``run_dir``'s best model on ``data``; write metrics.json.

    ``data`` defaults to the run's training file. On that file the held-out cells are
    the run's own validation cells (same seeded split); on another file a seeded
    share of its cells, of the run's validation size, is held out for the
    no-latent-baseline comparison. Also writes the figures and the diagnosis with the
    latent findings. Returns the metrics dictionary.

    With ``backed`` (default: as the run was trained, for its own training file) the
    cells are streamed ``chunk_size`` at a time: encoded in chunks, the held-out cells
    evaluated in chunks; the latent measurements then use a seeded subsample of at
    most :data:`BACKED_LATENT_MAX_CELLS` cells, the IWAE and baseline cells are read
    into memory (they are at most a few thousand).
    """
    if n_importance < 1:
        raise GenevaeError(f"--iwae-samples {n_importance}: use at least 1.")
    run = RunFolder(Path(run_dir))
    fitted = load_fitted(run.root)
    config = fitted.config
    path = str(data or config.data.path)
    backed = config.data.backed if backed is None and data is None else bool(backed)
    obs, cells = _cells(fitted, path, layer if layer is not None else config.data.layer,
                        data is None, backed, chunk_size or config.data.chunk_size)
    label = label or config.data.label_key
    labels = obs_labels(obs, label, path, "labels") if label else None
    batches = obs_labels(obs, batch, path, "batches") if batch else None
    pre = fitted.preprocessor
    n_cells = cells.n_cells
    echo(f"evaluating {run.root} on {path}: {n_cells} cells x {cells.n_genes} genes"
         + (" (streamed)" if backed else ""))

    every_cell = np.arange(n_cells)
    means, logvars, library_np = encode_batches(
        fitted.model, cells.batches(every_cell, EVAL_BATCH_SIZE, False))
    seed = config.train.seed
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
    atomic_write_text(run.metrics, json.dumps(metrics, indent=2, allow_nan=False, default=float) + "\n")
    run.figures.mkdir(exist_ok=True)
    shown = {key: values[measured] for key, values in ((label, labels), (batch, batches)) if key}
    for key in config.data.condition_keys:
        if key in obs and key not in shown:
            shown[key] = obs[key].astype(str).to_numpy()[measured]
    embedded = embed_2d(means[measured], seed=seed, method=embedding)
    save_figure(plot_latent_scatter(embedded.coords, {k: v[embedded.rows] for k, v in shown.items()},
                                    embedded.method, embedded.note), run.figures / "latent_scatter.png")
    probes = plot_probes(metrics["latent"])
    if probes is not None:
        save_figure(probes, run.figures / "probes.png")
    diagnosis = write_diagnosis(run, echo=None)
    echo(f"wrote {run.metrics}; verdict: {diagnosis.verdict}")
    return metrics


def _cells(
    fitted: FittedModel, path: str, layer: str | None, training_file: bool, backed: bool,
    chunk_size: int,
) -> tuple[pd.DataFrame, PreparedData | BackedData]:
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


def _in_memory(cells: PreparedData | BackedData, indices: np.ndarray, batch_size: int,
               shuffle: bool, seed: int = 0) -> InMemoryBatches:
    """Batches over a few cells held in memory (read from disk when streamed)."""
    if isinstance(cells, PreparedData):
        return cells.batches(indices, batch_size, shuffle, seed)
    x, library = cells.tensors(indices)
    return InMemoryBatches(x, library, cells.conditions[torch.as_tensor(indices)],
                           np.arange(len(indices)), batch_size, shuffle, seed)


def _heldout(fitted: FittedModel, cells: PreparedData | BackedData, train_idx, val_idx,
             seed: int) -> dict:
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


def _read_metrics(run: RunFolder) -> dict[str, Any] | None:
    if not run.metrics.exists():
        return None
    try:
        return json.loads(run.metrics.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise GenevaeError(f"{run.metrics}: not readable JSON ({error}); rerun genevae evaluate.") from None


def write_diagnosis(run: RunFolder, echo: Echo | None = _print) -> Diagnosis:
    """Diagnose the run's history with its latent findings; write diagnosis.txt/.json."""
    if not run.history.exists():
        raise GenevaeError(f"{run.root}: no history.csv; is this a genevae run folder?")
    history = History.read_csv(run.history)
    metrics = _read_metrics(run)
    extra = (latent_findings(metrics["latent"], metrics.get("heldout"), max_beta(history))
             if metrics else [])
    diagnosis = diagnose(history, extra)
    text = write_diagnosis_files(run, diagnosis)
    if echo is not None:
        echo(text)
    return diagnosis


def _history_figures(run: RunFolder, history: History) -> None:
    save_figure(plot_curves(history), run.curves)
    run.figures.mkdir(exist_ok=True)
    for name, figure in (("kl_heatmap", plot_kl_heatmap(history)),
                         ("rate_distortion", plot_rate_distortion(history))):
        if figure is not None:
            save_figure(figure, run.figures / f"{name}.png")


def report_run(run_dir: str | Path) -> Path:
    """Write ``report.html`` of a run folder (figures of its history drawn first)."""
    run = RunFolder(Path(run_dir))
    if not run.history.exists():
        raise GenevaeError(f"{run.root}: no history.csv; give a folder written by genevae train.")
    _history_figures(run, History.read_csv(run.history))
    if not run.diagnosis_json.exists():
        write_diagnosis(run, echo=None)
    return write_report(run.root)

