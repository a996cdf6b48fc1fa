"""``genevae simulate bulk|sc``: seeded simulated data with known factors, as ``.h5ad``."""

from __future__ import annotations

from pathlib import Path

from genevae.data.io import write_h5ad
from genevae.data.simulate import simulate_bulk, simulate_sc

__all__ = ["simulate_to_files"]


def simulate_to_files(
    kind: str, out: Path, seed: int = 0, n_cells: int | None = None, n_genes: int | None = None
) -> list[Path]:
    """Write ``simulate bulk`` (continuous and counts) or ``simulate sc`` files into ``out``."""
    sizes: dict[str, int] = {}
    if n_genes is not None:
        sizes["n_genes"] = n_genes
    if kind == "bulk":
        if n_cells is not None:
            sizes["n_samples"] = n_cells
        continuous, counts = simulate_bulk(seed=seed, **sizes)
        outputs = {out / "bulk_continuous.h5ad": continuous, out / "bulk_counts.h5ad": counts}
    else:
        if n_cells is not None:
            sizes["n_cells"] = n_cells
        outputs = {out / "sc_counts.h5ad": simulate_sc(seed=seed, **sizes)}
    for path, adata in outputs.items():
        write_h5ad(adata, path)
    return list(outputs)
