"""``report.html``: one self-contained page of a run folder.

The page only reads what the run folder holds (``diagnosis.json``, ``curves.png``,
``figures/*.png``, ``metrics.json``, ``config.toml``, ``history.csv``) and draws it:
the verdict and findings first, then the curves, the latent pictures, the metrics,
the configuration and a data summary. Images are inline ``data:`` URIs; the page
has no script and fetches nothing. Every string that comes from the files (gene
names, labels, file names, finding text, config values) is HTML-escaped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from genevae.errors import GenevaeError
from genevae.files import atomic_write_text
from genevae.report.html import CSS, escape_text, format_number, inline_figure
from genevae.runfolder import RunFolder

__all__ = ["write_report", "render_report"]

_MARKS = {"ok": "✅", "info": "ℹ️", "warn": "⚠️", "fail": "❌"}
#: Lists longer than this are summarised in the metrics table.
_MAX_LIST_ITEMS = 8

def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, escaped cell) pairs of a JSON value, lists summarised."""
    if isinstance(value, dict):
        rows = []
        for key, item in value.items():
            rows.extend(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return rows
    if isinstance(value, list) and value and all(isinstance(v, dict) and "gene" in v for v in value):
        return [(prefix, ", ".join(f"{escape_text(v['gene'])} "
                                   f"({format_number(v.get('change', ''))})" for v in value))]
    if isinstance(value, list):
        numbers = [v for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(value) > _MAX_LIST_ITEMS:
            if len(numbers) == len(value):
                return [(prefix, f"{len(value)} values, {format_number(min(numbers))} .. "
                                 f"{format_number(max(numbers))}")]
            return [(prefix, f"{len(value)} values")]
        if all(not isinstance(v, dict | list) for v in value):
            return [(prefix, ", ".join(format_number(v) for v in value))]
        rows = []
        for i, item in enumerate(value):
            rows.extend(_flatten(item, f"{prefix}[{i}]"))
        return rows
    return [(prefix, format_number(value))]


def _findings(diagnosis: dict[str, Any]) -> str:
    items = []
    for finding in diagnosis.get("findings", []):
        severity = str(finding.get("severity", "ok"))
        parts = [f"{_MARKS.get(severity, '')} {escape_text(finding.get('title', ''))}"]
        evidence = finding.get("evidence") or {}
        if severity not in ("ok", "info") and evidence:
            shown = ", ".join(f"{escape_text(k)}={format_number(v)}" for k, v in evidence.items())
            parts.append(f'<div class="evidence">evidence: {shown}</div>')
        if severity not in ("ok", "info") and finding.get("recommendation"):
            parts.append('<div class="recommendation">fix: '
                         f'{escape_text(finding["recommendation"])}</div>')
        items.append(f'<li class="{escape_text(severity)}">{"".join(parts)}</li>')
    return f'<ul class="findings">{"".join(items)}</ul>'


def _list(tag: str, values: list[Any]) -> str:
    return f"<{tag}>" + "".join(f"<li>{escape_text(v)}</li>" for v in values) + f"</{tag}>"


def _table(rows: list[tuple[str, str]], header: tuple[str, str]) -> str:
    body = "".join(f"<tr><td>{escape_text(k)}</td><td>{v}</td></tr>" for k, v in rows)
    return f"<table><tr><th>{header[0]}</th><th>{header[1]}</th></tr>{body}</table>"


def _history_summary(run: RunFolder) -> str:
    if not run.history.exists():
        return ""
    frame = pd.read_csv(run.history)
    rows = [("epochs", format_number(len(frame)))]
    for column in ("train_loss", "val_loss", "train_recon", "val_recon", "train_kl", "val_kl",
                   "train_active_units", "loss_reduction", "n_genes", "n_latent"):
        if column in frame.columns and len(frame):
            rows.append((f"{column} (last epoch)", format_number(frame[column].iloc[-1])))
    return _table(rows, ("run", "value"))


def render_report(run_dir: str | Path) -> str:
    """The report page of a run folder, as HTML text."""
    run = RunFolder(Path(run_dir))
    if not run.diagnosis_json.exists():
        raise GenevaeError(
            f"{run.root}: no diagnosis.json; run genevae train (or genevae evaluate) on this "
            "folder first."
        )
    try:
        diagnosis = json.loads(run.diagnosis_json.read_text(encoding="utf-8"))
    except ValueError as error:
        raise GenevaeError(f"{run.diagnosis_json}: not readable JSON ({error}).") from None
    healthy = bool(diagnosis.get("healthy"))
    sections = [
        f"<h1>genevae report — {escape_text(run.root.resolve().name)}</h1>",
        f'<div class="verdict {"healthy" if healthy else "unhealthy"}" id="verdict">'
        f"<strong>Verdict: {escape_text(diagnosis.get('verdict', 'unknown'))}</strong>"
        f"{escape_text(diagnosis.get('conclusion', ''))}</div>",
        "<h2>Findings</h2>", _findings(diagnosis),
    ]
    if diagnosis.get("fixes"):
        sections += ["<h2>Fixes, most important first</h2>", _list("ol", diagnosis["fixes"])]
    if diagnosis.get("notes"):
        sections += ["<h2>Notes</h2>", _list("ul", diagnosis["notes"])]
    if run.curves.exists():
        sections += ["<h2>Training curves</h2>", inline_figure(run.curves)]
    figures = sorted(run.figures.glob("*.png")) if run.figures.is_dir() else []
    if figures:
        sections += ["<h2>Latent space</h2>", *(inline_figure(path) for path in figures)]
    if run.metrics.exists():
        try:
            metrics = json.loads(run.metrics.read_text(encoding="utf-8"))
        except ValueError as error:
            raise GenevaeError(f"{run.metrics}: not readable JSON ({error}).") from None
        sections += ["<h2>Metrics</h2>", _table(_flatten(metrics), ("metric", "value"))]
    if run.config.exists():
        sections += ["<h2>Configuration</h2>",
                     f"<pre>{escape_text(run.config.read_text(encoding='utf-8'))}</pre>"]
    summary = _history_summary(run)
    if summary:
        sections += ["<h2>Data and run summary</h2>", summary]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>genevae report — {escape_text(run.root.resolve().name)}</title>"
        f"<style>{CSS}</style></head><body><main>{''.join(sections)}</main></body></html>\n"
    )


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.html`` into the run folder atomically; returns its path."""
    run = RunFolder(Path(run_dir))
    html = render_report(run.root)
    atomic_write_text(run.report, html)
    return run.report
