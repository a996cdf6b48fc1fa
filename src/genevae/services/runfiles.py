"""A run folder's files: create or clear it, and write or read its curves, metrics and
diagnosis. The one writer of ``diagnosis.txt``/``diagnosis.json`` and of the history
figures, for ``train``, ``evaluate`` and ``report`` alike."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from genevae.diagnosis.engine import diagnose
from genevae.diagnosis.findings import Diagnosis
from genevae.diagnosis.render import parse_json, render_json, render_text
from genevae.diagnosis.units import max_beta
from genevae.errors import GenevaeError
from genevae.files import atomic_write_text
from genevae.history.history import History
from genevae.runfolder import RunFolder
from genevae.services.echo import Echo, print_line

__all__ = [
    "prepare_run_folder",
    "truncate_log",
    "read_run_history",
    "write_history_figures",
    "read_metrics",
    "write_metrics",
    "write_diagnosis",
    "read_diagnosis",
    "finish_run",
]


def prepare_run_folder(out: Path, overwrite: bool) -> RunFolder:
    """Check ``out`` may receive a run; with ``overwrite``, remove a previous run's files."""
    if out.exists() and not out.is_dir():
        raise GenevaeError(f"--out {out} is a file; give a folder for the run.")
    run = RunFolder(out)
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise GenevaeError(
                f"--out {out} already holds files (a previous run?). Choose another folder, "
                "or pass --overwrite to replace that run."
            )
        for path in run.entries():
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return run


def truncate_log(run: RunFolder, n_epochs: int) -> None:
    """Keep the first ``n_epochs`` lines of train.log (a killed run may have written more)."""
    lines = run.log.read_text(encoding="utf-8").splitlines() if run.log.exists() else []
    atomic_write_text(run.log, "".join(line + "\n" for line in lines[:n_epochs]))


def read_run_history(run: RunFolder, hint: str = "is this a genevae run folder?") -> History:
    """The run's ``history.csv``; a clear error naming the folder when it has none."""
    if not run.history.exists():
        raise GenevaeError(f"{run.root}: no history.csv; {hint}")
    return History.read_csv(run.history)


def write_history_figures(run: RunFolder, history: History, latent: bool = True) -> None:
    """Draw ``curves.png``; with ``latent`` also the KL heatmap and the rate-distortion
    figure into ``figures/`` (those the history has the columns for)."""
    from genevae.plot.curves import plot_curves, save_figure  # matplotlib: only when drawing

    save_figure(plot_curves(history), run.curves)
    if not latent:
        return
    from genevae.plot.latent import plot_kl_heatmap, plot_rate_distortion

    run.figures.mkdir(exist_ok=True)
    for name, figure in (("kl_heatmap", plot_kl_heatmap(history)),
                         ("rate_distortion", plot_rate_distortion(history))):
        if figure is not None:
            save_figure(figure, run.figure(name))


def read_metrics(run: RunFolder) -> dict[str, Any] | None:
    """``metrics.json`` of ``genevae evaluate``, or None before the run was evaluated."""
    if not run.metrics.exists():
        return None
    try:
        return json.loads(run.metrics.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise GenevaeError(f"{run.metrics}: not readable JSON ({error}); rerun genevae evaluate.") from None


def write_metrics(run: RunFolder, metrics: dict[str, Any]) -> None:
    """Write ``metrics.json`` atomically (no NaN: a non-finite number is an error)."""
    atomic_write_text(run.metrics, json.dumps(metrics, indent=2, allow_nan=False, default=float) + "\n")


def write_diagnosis(
    run: RunFolder, history: History, metrics: dict[str, Any] | None = None
) -> tuple[Diagnosis, str]:
    """Diagnose ``history`` (with the latent findings of ``metrics`` when given), write
    ``diagnosis.txt`` and ``diagnosis.json`` atomically; returns the diagnosis and its text."""
    extra = []
    if metrics:
        # the latent checks load scikit-learn: only for a run that has been evaluated
        from genevae.diagnosis.latent_findings import latent_findings

        extra = latent_findings(metrics["latent"], metrics.get("heldout"), max_beta(history))
    diagnosis = diagnose(history, extra)
    text = render_text(diagnosis)
    atomic_write_text(run.diagnosis, text + "\n")
    atomic_write_text(run.diagnosis_json, render_json(diagnosis) + "\n")
    return diagnosis, text


def read_diagnosis(run: RunFolder) -> Diagnosis:
    """The diagnosis a run folder holds (``diagnosis.json``)."""
    if not run.diagnosis_json.exists():
        raise GenevaeError(f"{run.root}: no diagnosis.json; is this a finished genevae run?")
    return parse_json(run.diagnosis_json.read_text(encoding="utf-8"))


def finish_run(run: RunFolder | None, history: History, echo: Echo = print_line,
               figures: bool = True) -> Diagnosis:
    """Diagnose the history from the log alone, print it, and (with ``run``) write the
    diagnosis files and, with ``figures``, the curves (``genevae report`` draws them
    later; without them no matplotlib is loaded)."""
    if run is not None and len(history):
        if figures:
            write_history_figures(run, history, latent=False)
        diagnosis, text = write_diagnosis(run, history)
    else:
        diagnosis = diagnose(history)
        text = render_text(diagnosis)
    echo("")
    echo(text)
    return diagnosis
