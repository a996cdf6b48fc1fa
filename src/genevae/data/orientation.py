"""Which side of a text table holds the genes, read from the row and column names."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["detect_orientation", "GENE_LIKE_MAJORITY"]

#: A side of a text table is taken to hold genes when at least this share of its
#: names look like gene identifiers and the other side's do not (genevae choice).
GENE_LIKE_MAJORITY = 0.5

# Ensembl gene ids (ENSG..., ENSMUSG..., ENSDARG..., optional version), the
# simulator's gene_0001 names, and all-caps symbols with at least two letters (HGNC
# style: ACTB, C1QA, MT-CO1, AL627309.1; not sample names such as S1 or A2).
_GENE_PATTERNS = (
    re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$"),
    re.compile(r"^gene[_.\-]?\d+$", re.IGNORECASE),
    re.compile(r"^(?=(?:[^A-Z]*[A-Z]){2})[A-Z][A-Z0-9]*(-[A-Z0-9]+)*(\.\d+)?$"),
)

# Names that match the symbol pattern but name samples: 10x barcodes, SRA/GEO/BioSample
# accessions, Coriell / 1000 Genomes cell lines, TCGA barcodes, spelled-out samples.
_SAMPLE_PATTERNS = (
    re.compile(r"^[ACGTN]{8,}(-\d+)?$"),
    re.compile(r"^(SRR|ERR|DRR|SRX|ERX|SRS|GSM|SAMN|SAMEA)\d+$"),
    re.compile(r"^(NA|HG|GM)\d{5}$"),
    re.compile(r"^TCGA-"),
    re.compile(r"^(sample|cell|barcode|donor|patient)", re.IGNORECASE),
)


def _looks_like_gene(name: str) -> bool:
    if any(pattern.match(name) for pattern in _SAMPLE_PATTERNS):
        return False
    return any(pattern.match(name) for pattern in _GENE_PATTERNS)


def _gene_like_share(names: pd.Index) -> float:
    return float(np.mean([_looks_like_gene(str(name)) for name in names]))


def detect_orientation(rows: pd.Index, columns: pd.Index) -> tuple[bool, str]:
    """Whether genes are in the rows, and why that was assumed.

    Names decide when one side mostly looks like gene identifiers (Ensembl ids,
    all-caps symbols) and the other does not; otherwise the longer side holds the
    genes, as in most bulk tables.
    """
    row_share, column_share = _gene_like_share(rows), _gene_like_share(columns)
    if row_share >= GENE_LIKE_MAJORITY > column_share:
        return (
            True,
            f"row names look like gene identifiers (e.g. {rows[0]!r}) and column names do not",
        )
    if column_share >= GENE_LIKE_MAJORITY > row_share:
        return False, (
            f"column names look like gene identifiers (e.g. {columns[0]!r}) and row names do not"
        )
    sizes = f"rows ({len(rows)}) than columns ({len(columns)})"
    if len(rows) > len(columns):
        return True, f"the names are inconclusive and there are more {sizes}"
    return False, f"the names are inconclusive and there are no more {sizes}"
