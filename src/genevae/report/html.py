"""The HTML building blocks the report pages share: style sheet, escaping, numbers, figures.

``report.html`` (:mod:`genevae.report.page`), the ``--auto-fix`` page
(:mod:`genevae.report.attempts`) and ``sweep.html`` (:mod:`genevae.report.sweep`)
are built from these, so they look alike and follow the same rules: every string
from a file is HTML-escaped, and images are inline ``data:`` URIs (no script, nothing
fetched).
"""

from __future__ import annotations

import base64
import math
from html import escape
from pathlib import Path
from typing import Any

__all__ = ["CSS", "escape_text", "format_number", "caption", "inline_figure"]

#: The style sheet of every page, inlined in its ``<style>`` element.
CSS = """
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

#: Words a caption writes in capitals.
_ACRONYMS = {"kl", "pca", "umap", "mi", "iwae"}


def escape_text(value: Any) -> str:
    """``str(value)``, HTML-escaped (quotes too, so it is safe in an attribute)."""
    return escape(str(value), quote=True)


def format_number(value: Any) -> str:
    """A table cell: a finite float to 4 significant digits, anything else as text; escaped."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return escape_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return escape_text(value)
    return escape_text(f"{value:.4g}") if isinstance(value, float) else escape_text(value)


def caption(stem: str) -> str:
    """A figure's caption from its file stem: ``kl_heatmap`` -> ``KL heatmap``,
    ``latent_scatter`` -> ``Latent scatter`` (not escaped)."""
    words = [w.upper() if w.lower() in _ACRONYMS else w for w in stem.replace("_", " ").split()]
    if words and words[0].lower() not in _ACRONYMS:
        words[0] = words[0].capitalize()
    return " ".join(words)


def inline_figure(path: Path) -> str:
    """A ``<figure>`` holding the PNG at ``path`` as a ``data:`` URI, captioned from its name."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    text = escape_text(caption(path.stem))
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{text}">'
            f"<figcaption>{text} ({escape_text(path.name)})</figcaption></figure>")
