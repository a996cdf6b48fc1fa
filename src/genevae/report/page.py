"""``report.html``: one self-contained page of a run folder.

The page only reads what the run folder holds (``diagnosis.json``, ``curves.png``,
``figures/*.png``, ``metrics.json``, ``config.toml``, ``history.csv``) and draws it:
the verdict and findings first, then the curves, the latent pictures, the metrics,
the configuration and a data summary. Images are inline ``data:`` URIs; the page
has no script and fetches nothing. Every string that comes from the files (gene
names, labels, file names, finding text, config values) is HTML-escaped.
"""

from __future__ import annotations

import base64
import json
import math
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from genevae.errors import GenevaeError
from genevae.files import atomic_write_text
from genevae.runfolder import RunFolder

__all__ = ["write_report", "render_report"]

_MARKS = {"ok": "✅", "info": "ℹ️", "warn": "⚠️", "fail": "❌"}
#: Lists longer than this are summarised in the metrics table.
_MAX_LIST_ITEMS = 8

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d2430;
       background: #f6f7f9; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem; background: #fff; }
h1 { font-size: 1.5rem; margin: 0 0 1rem; word-break: break-all; }
h2 { font-size: 1.2rem; border-bottom: 1px solid #dde1e6; padding-bottom: .3rem; margin-top: 2rem; }
.verdict { padding: 1rem 1.2rem; border-radius: 6px; font-size: 1.05rem; margin-bottom: 1rem; }
.verdict.healthy { background: #e6f4ea; border: 2px solid #2e7d32; }
.verdict.unhealthy { background: #fdecea; border: 2px solid #c62828; }
.verdict strong { font-size: 1.25rem; display: block; margin-bottom: .3rem; }
ul.findings { list-style: none; padding: 0; }
ul.findings li { margin: .4rem 0; padding: .4rem .6rem; border-left: 4px solid #dde1e6; }
ul.findings li.warn { border-color: #f9a825; background: #fffaf0; }
ul.findings li.fail { border-color: #c62828; background: #fff5f5; }
.evidence, .recommendation { font-size: .85rem; color: #4a5361; margin-top: .2rem; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eceff3; }
figcaption { font-size: .85rem; color: #4a5361; }
table { border-collapse: collapse; font-size: .85rem; width: 100%; }
th, td { border: 1px solid #dde1e6; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f0f2f5; }
pre { background: #f0f2f5; padding: .8rem; overflow-x: auto; font-size: .8rem; }
@media print {
  body { background: #fff; }
  main { max-width: none; padding: 0; }
  figure, tr, li { break-inside: avoid; }
}
"""


def _text(value: Any) -> str:
    return escape(str(value), quote=True)


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return _text(value)
    return _text(f"{value:.4g}") if isinstance(value, float) else _text(value)


_ACRONYMS = {"kl", "pca", "umap", "mi", "iwae"}


def _caption(stem: str) -> str:
    """``kl_heatmap`` -> ``KL heatmap``, ``latent_scatter`` -> ``Latent scatter``."""
    words = [w.upper() if w.lower() in _ACRONYMS else w for w in stem.replace("_", " ").split()]
    if words and words[0].lower() not in _ACRONYMS:
        words[0] = words[0].capitalize()
    return " ".join(words)


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    caption = _text(_caption(path.stem))
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
            f"<figcaption>{caption} ({_text(path.name)})</figcaption></figure>")


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, escaped cell) pairs of a JSON value, lists summarised."""
    if isinstance(value, dict):
        rows = []
        for key, item in value.items():
            rows.extend(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return rows
    if isinstance(value, list) and value and all(isinstance(v, dict) and "gene" in v for v in value):
        return [(prefix, ", ".join(f"{_text(v['gene'])} ({_number(v.get('change', ''))})"
                                   for v in value))]
    if isinstance(value, list):
        numbers = [v for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(value) > _MAX_LIST_ITEMS:
            if len(numbers) == len(value):
                return [(prefix, f"{len(value)} values, {_number(min(numbers))} .. "
                                 f"{_number(max(numbers))}")]
            return [(prefix, f"{len(value)} values")]
        if all(not isinstance(v, dict | list) for v in value):
            return [(prefix, ", ".join(_number(v) for v in value))]
        rows = []
        for i, item in enumerate(value):
            rows.extend(_flatten(item, f"{prefix}[{i}]"))
        return rows
    return [(prefix, _number(value))]


def _findings(diagnosis: dict[str, Any]) -> str:
    items = []
    for finding in diagnosis.get("findings", []):
        severity = str(finding.get("severity", "ok"))
        parts = [f"{_MARKS.get(severity, '')} {_text(finding.get('title', ''))}"]
        evidence = finding.get("evidence") or {}
        if severity not in ("ok", "info") and evidence:
            shown = ", ".join(f"{_text(k)}={_number(v)}" for k, v in evidence.items())
            parts.append(f'<div class="evidence">evidence: {shown}</div>')
        if severity not in ("ok", "info") and finding.get("recommendation"):
            parts.append(f'<div class="recommendation">fix: {_text(finding["recommendation"])}</div>')
        items.append(f'<li class="{_text(severity)}">{"".join(parts)}</li>')
    return f'<ul class="findings">{"".join(items)}</ul>'


def _list(tag: str, values: list[Any]) -> str:
    return f"<{tag}>" + "".join(f"<li>{_text(v)}</li>" for v in values) + f"</{tag}>"


def _table(rows: list[tuple[str, str]], header: tuple[str, str]) -> str:
    body = "".join(f"<tr><td>{_text(k)}</td><td>{v}</td></tr>" for k, v in rows)
    return f"<table><tr><th>{header[0]}</th><th>{header[1]}</th></tr>{body}</table>"


def _history_summary(run: RunFolder) -> str:
    if not run.history.exists():
        return ""
    frame = pd.read_csv(run.history)
    rows = [("epochs", _number(len(frame)))]
    for column in ("train_loss", "val_loss", "train_recon", "val_recon", "train_kl", "val_kl",
                   "train_active_units", "loss_reduction", "n_genes", "n_latent"):
        if column in frame.columns and len(frame):
            rows.append((f"{column} (last epoch)", _number(frame[column].iloc[-1])))
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
        f"<h1>genevae report — {_text(run.root.resolve().name)}</h1>",
        f'<div class="verdict {"healthy" if healthy else "unhealthy"}" id="verdict">'
        f"<strong>Verdict: {_text(diagnosis.get('verdict', 'unknown'))}</strong>"
        f"{_text(diagnosis.get('conclusion', ''))}</div>",
        "<h2>Findings</h2>", _findings(diagnosis),
    ]
    if diagnosis.get("fixes"):
        sections += ["<h2>Fixes, most important first</h2>", _list("ol", diagnosis["fixes"])]
    if diagnosis.get("notes"):
        sections += ["<h2>Notes</h2>", _list("ul", diagnosis["notes"])]
    if run.curves.exists():
        sections += ["<h2>Training curves</h2>", _image(run.curves)]
    figures = sorted(run.figures.glob("*.png")) if run.figures.is_dir() else []
    if figures:
        sections += ["<h2>Latent space</h2>", *(_image(path) for path in figures)]
    if run.metrics.exists():
        try:
            metrics = json.loads(run.metrics.read_text(encoding="utf-8"))
        except ValueError as error:
            raise GenevaeError(f"{run.metrics}: not readable JSON ({error}).") from None
        sections += ["<h2>Metrics</h2>", _table(_flatten(metrics), ("metric", "value"))]
    if run.config.exists():
        sections += ["<h2>Configuration</h2>",
                     f"<pre>{_text(run.config.read_text(encoding='utf-8'))}</pre>"]
    summary = _history_summary(run)
    if summary:
        sections += ["<h2>Data and run summary</h2>", summary]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>genevae report — {_text(run.root.resolve().name)}</title>"
        f"<style>{_CSS}</style></head><body><main>{''.join(sections)}</main></body></html>\n"
    )


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.html`` into the run folder atomically; returns its path."""
    run = RunFolder(Path(run_dir))
    html = render_report(run.root)
    atomic_write_text(run.report, html)
    return run.report
