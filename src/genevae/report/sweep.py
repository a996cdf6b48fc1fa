"""``sweep.html``: the β sweep on one self-contained page (same rules as ``report.html``)."""

from __future__ import annotations

import json
from pathlib import Path

from genevae.errors import GenevaeError
from genevae.files import atomic_write_text
from genevae.report.html import CSS, escape_text, format_number, inline_figure
from genevae.runfolder import RunFolder, SweepFolder

__all__ = ["write_sweep_report"]

_COLUMNS = (("beta", "β"), ("verdict", "verdict"), ("rate", "rate (KL, nats/cell)"),
            ("distortion", "distortion (nats/cell)"), ("kl_per_dim", "KL per dim"),
            ("n_active", "active units"), ("n_directions", "informative directions"),
            ("heldout_neg_elbo", "held-out −ELBO"),
            ("probe_balanced_accuracy", "probe (balanced)"), ("pca_balanced_accuracy", "PCA probe"))


def write_sweep_report(sweep_dir: str | Path) -> Path:
    """Write ``sweep.html`` from ``sweep.json`` and ``figures/`` of a sweep folder."""
    sweep_folder = SweepFolder(Path(sweep_dir))
    try:
        sweep = json.loads(sweep_folder.json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise GenevaeError(
            f"{sweep_folder.root}: no readable {sweep_folder.json.name} ({error}); "
            "run genevae sweep."
        ) from None
    rows = sweep["runs"]
    columns = [(key, name) for key, name in _COLUMNS if any(r.get(key) is not None for r in rows)]
    header = "".join(f"<th>{escape_text(name)}</th>" for _, name in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{format_number(r.get(key) if r.get(key) is not None else '')}</td>"
                         for key, _ in columns) + "</tr>"
        for r in rows
    )
    figures = (sorted(sweep_folder.figures.glob("*.png")) if sweep_folder.figures.is_dir()
               else [])
    runs = [RunFolder(Path(r["run"])) for r in rows]
    folder_name = escape_text(sweep_folder.root.resolve().name)
    html = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>genevae β sweep — {folder_name}</title><style>{CSS}</style></head>"
        f"<body><main><h1>genevae β sweep — {folder_name}</h1>"
        f'<div class="verdict healthy" id="verdict"><strong>Recommended β = '
        f"{format_number(sweep['recommended_beta'])}</strong>"
        f"{escape_text(sweep['reasoning'])}</div>"
        f"<h2>Runs</h2><table><tr>{header}</tr>{body}</table>"
        "<p>Each run has its own report: " + ", ".join(
            f"{escape_text(run.root.name)}/{run.report.name}" for run in runs) + ".</p>"
        + ("<h2>Figures</h2>" + "".join(inline_figure(p) for p in figures) if figures else "")
        + "</main></body></html>\n"
    )
    atomic_write_text(sweep_folder.html, html)
    return sweep_folder.html
