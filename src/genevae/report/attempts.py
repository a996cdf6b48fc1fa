"""``report.html`` of an ``--auto-fix`` run: the attempts side by side."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genevae.files import atomic_write_text
from genevae.report.html import CSS, escape_text, format_number, inline_figure
from genevae.runfolder import AttemptsFolder, RunFolder

__all__ = ["write_attempts_report"]


def _latent(run: RunFolder) -> dict[str, Any]:
    if not run.metrics.exists():
        return {}
    latent = json.loads(run.metrics.read_text(encoding="utf-8"))["latent"]
    row: dict[str, Any] = {"active units": f"{latent['n_active']} of {latent['n_latent']}"}
    if latent.get("probes"):
        row["probe (balanced)"] = max(latent["probes"]["mean"][c]["balanced_accuracy_mean"]
                                      for c in ("logistic", "knn"))
    if latent.get("pca_baseline"):
        row["PCA probe"] = max(latent["pca_baseline"][c]["balanced_accuracy_mean"]
                               for c in ("logistic", "knn"))
    return row


def write_attempts_report(root: str | Path, attempts: Sequence[dict[str, Any]]) -> Path:
    """Write ``root/report.html``: a table of the attempts, then each one's curves.

    ``attempts`` are the records of ``attempts.json``; each names its run folder under
    ``root`` (``"folder": "attempt_1"``).
    """
    folder = AttemptsFolder(Path(root))
    runs = [RunFolder(folder.root / a["folder"]) for a in attempts]
    rows = [{"attempt": a["attempt"], "verdict": a["verdict"], **_latent(run),
             "next remedy": a["remedy_next"] or "—"}
            for a, run in zip(attempts, runs, strict=True)]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    header = "".join(f"<th>{escape_text(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{format_number(r.get(k, ''))}</td>" for k in keys)
                   + "</tr>" for r in rows)
    final = attempts[-1]
    columns = []
    for attempt, run in zip(attempts, runs, strict=True):
        pictures = [p for p in (run.curves, run.figure("kl_heatmap")) if p.exists()]
        columns.append(f"<h3>Attempt {attempt['attempt']}: {escape_text(attempt['verdict'])}</h3>"
                       + "".join(inline_figure(p) for p in pictures)
                       + f"<p>Full report: {escape_text(attempt['folder'])}/{run.report.name}</p>")
    folder_name = escape_text(folder.root.resolve().name)
    html = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>genevae auto-fix — {folder_name}</title><style>{CSS}</style>"
        f"</head><body><main><h1>genevae auto-fix — {folder_name}</h1>"
        f'<div class="verdict {"healthy" if final["healthy"] else "unhealthy"}" id="verdict">'
        f"<strong>Final attempt {final['attempt']}: {escape_text(final['verdict'])}</strong>"
        f"{len(attempts)} attempt(s).</div>"
        f"<h2>Attempts</h2><table><tr>{header}</tr>{body}</table>"
        f"<h2>Side by side</h2>{''.join(columns)}</main></body></html>\n"
    )
    atomic_write_text(folder.report, html)
    return folder.report
