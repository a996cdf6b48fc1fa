"""``genevae evaluate RUN``: measure a run's latent space, write metrics.json, the latent
figures and the diagnosis with the latent findings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from genevae.data.categories import obs_labels
from genevae.diagnosis.embedding import embed_2d
from genevae.diagnosis.findings import Diagnosis
from genevae.errors import GenevaeError
from genevae.plot.curves import save_figure
from genevae.plot.latent import plot_latent_scatter, plot_probes
from genevae.runfolder import RunFolder
from genevae.services.echo import Echo, print_line
from genevae.services.evaluation import IWAE_SAMPLES, Cells, load_cells, measure
from genevae.services.fitted import FittedModel, load_fitted
from genevae.services.runfiles import read_run_history, write_diagnosis, write_metrics

__all__ = ["Evaluation", "evaluate_run", "evaluate_cells"]


@dataclass(frozen=True)
class Evaluation:
    """The outcome of an evaluation: ``metrics.json``, the diagnosis and its text."""

    metrics: dict[str, Any]
    diagnosis: Diagnosis
    text: str


def evaluate_run(
    run_dir: str | Path,
    data: str | Path | None = None,
    label: str | None = None,
    batch: str | None = None,
    layer: str | None = None,
    n_importance: int = IWAE_SAMPLES,
    embedding: str = "umap",
    echo: Echo = print_line,
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
    most :data:`~genevae.services.evaluation.BACKED_LATENT_MAX_CELLS` cells, the IWAE
    and baseline cells are read into memory (they are at most a few thousand).
    """
    if n_importance < 1:
        raise GenevaeError(f"--iwae-samples {n_importance}: use at least 1.")
    run = RunFolder(Path(run_dir))
    fitted = load_fitted(run.root)
    config = fitted.config
    path = str(data or config.data.path)
    backed = config.data.backed if backed is None and data is None else bool(backed)
    obs, cells = load_cells(fitted, path, layer if layer is not None else config.data.layer,
                            data is None, backed, chunk_size or config.data.chunk_size)
    return evaluate_cells(run, fitted, obs, cells, path, label, batch, n_importance, embedding,
                          echo, backed).metrics


def evaluate_cells(
    run: RunFolder,
    fitted: FittedModel,
    obs: pd.DataFrame,
    cells: Cells,
    path: str,
    label: str | None = None,
    batch: str | None = None,
    n_importance: int = IWAE_SAMPLES,
    embedding: str = "umap",
    echo: Echo = print_line,
    backed: bool = False,
) -> Evaluation:
    """Evaluate ``fitted`` on prepared ``cells`` of ``path`` (``obs`` their annotations):
    what :func:`evaluate_run` does once the cells are read. ``genevae train`` calls it
    with the cells it trained on, so the data file is read once."""
    config = fitted.config
    label = label or config.data.label_key
    labels = obs_labels(obs, label, path, "labels") if label else None
    batches = obs_labels(obs, batch, path, "batches") if batch else None
    echo(f"evaluating {run.root} on {path}: {cells.n_cells} cells x {cells.n_genes} genes"
         + (" (streamed)" if backed else ""))
    found = measure(fitted, obs, cells, path, label, labels, batch, batches, n_importance, backed)
    measured = found.measured
    write_metrics(run, found.metrics)
    run.figures.mkdir(exist_ok=True)
    shown = {key: values[measured] for key, values in ((label, labels), (batch, batches)) if key}
    for key in config.data.condition_keys:
        if key in obs and key not in shown:
            shown[key] = obs[key].astype(str).to_numpy()[measured]
    embedded = embed_2d(found.means[measured], seed=config.train.seed, method=embedding)
    save_figure(plot_latent_scatter(embedded.coords, {k: v[embedded.rows] for k, v in shown.items()},
                                    embedded.method, embedded.note), run.figure("latent_scatter"))
    probes = plot_probes(found.metrics["latent"])
    if probes is not None:
        save_figure(probes, run.figure("probes"))
    diagnosis, text = write_diagnosis(run, read_run_history(run), found.metrics)
    echo(f"wrote {run.metrics}; verdict: {diagnosis.verdict}")
    return Evaluation(found.metrics, diagnosis, text)
