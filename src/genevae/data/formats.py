"""Which reader an input needs, from its path: ``.h5ad``, a delimited text table or a
10x Genomics folder, each file optionally gzip-compressed."""

from __future__ import annotations

from pathlib import Path

from genevae.errors import GenevaeError

__all__ = ["input_kind", "strip_gz", "find_file", "SUPPORTED_INPUTS"]

SUPPORTED_INPUTS = (
    ".h5ad, .csv, .tsv or .txt (each optionally .gz), or a 10x folder holding "
    "matrix.mtx(.gz), features.tsv(.gz) or genes.tsv(.gz) and barcodes.tsv(.gz)"
)


def strip_gz(name: str) -> str:
    """``name`` without a final ``.gz`` (any case): ``"matrix.mtx.gz"`` -> ``"matrix.mtx"``."""
    return name[: -len(".gz")] if name.lower().endswith(".gz") else name


def input_kind(path: Path) -> str:
    """``"h5ad"``, ``"text"`` or ``"10x"``, from the path's name."""
    if path.is_dir():
        if find_file(path, "", ("matrix.mtx",)) is None:
            raise GenevaeError(
                f"folder {path} holds no matrix.mtx or matrix.mtx.gz; give a 10x folder or a "
                f"file ({SUPPORTED_INPUTS})."
            )
        return "10x"
    suffix = Path(strip_gz(path.name)).suffix.lower()
    if suffix == ".h5ad" and not path.name.lower().endswith(".gz"):
        return "h5ad"
    if suffix in (".csv", ".tsv", ".txt"):
        return "text"
    if suffix == ".mtx":
        return "10x"
    raise GenevaeError(
        f"{path}: unknown file type {path.suffix!r}. Supported: {SUPPORTED_INPUTS}. "
        "Convert other formats (e.g. .loom, 10x .h5) to .h5ad first."
    )


def find_file(folder: Path, prefix: str, stems: tuple[str, ...]) -> Path | None:
    """The first existing file ``folder / (prefix + stem)``, or the same with ``.gz``, trying
    ``stems`` in order; None if there is none."""
    for stem in stems:
        for name in (prefix + stem, prefix + stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None
