"""``genevae report RUN``: the run's history figures and one self-contained report.html."""

from __future__ import annotations

from pathlib import Path

from genevae.report.page import write_report
from genevae.runfolder import RunFolder
from genevae.services.runfiles import (
    read_metrics,
    read_run_history,
    write_diagnosis,
    write_history_figures,
)

__all__ = ["report_run"]


def report_run(run_dir: str | Path) -> Path:
    """Write ``report.html`` of a run folder (figures of its history drawn first)."""
    run = RunFolder(Path(run_dir))
    history = read_run_history(run, "give a folder written by genevae train.")
    write_history_figures(run, history)
    if not run.diagnosis_json.exists():
        write_diagnosis(run, history, read_metrics(run))
    return write_report(run.root)
