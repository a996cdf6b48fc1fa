"""``genevae train`` reads its data file once (issue 20, acceptance 4): the evaluation at
the end of a run uses the cells training prepared, and measures what ``genevae evaluate``
measures when it reads the file again."""

from __future__ import annotations

import json
import math
from pathlib import Path

import anndata as ad
from conftest import tiny_config

from genevae.commands.evaluate import evaluate_run
from genevae.commands.train import train_run
from genevae.runfolder import RunFolder

#: Relative difference allowed between the two evaluations' numbers: the same model on the
#: same cells with the same seeds, so only float summation order may differ.
RELATIVE_TOLERANCE = 1e-6


def _count_reads(monkeypatch, path: Path) -> list[str]:
    """Record every ``anndata.read_h5ad`` of ``path`` (genevae's in-memory .h5ad reader)."""
    reads: list[str] = []
    real = ad.read_h5ad

    def counted(filename, *args, **kwargs):
        if Path(filename).resolve() == path.resolve():
            reads.append(str(filename))
        return real(filename, *args, **kwargs)

    monkeypatch.setattr(ad, "read_h5ad", counted)
    return reads


def _assert_same(a, b, where="metrics"):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-9), (where, a, b)
    else:
        assert a == b, (where, a, b)


def test_train_reads_its_file_once_and_evaluates_as_evaluate_does(sc_h5ad, tmp_path,
                                                                   monkeypatch):
    reads = _count_reads(monkeypatch, sc_h5ad)
    config = tiny_config(data={"path": str(sc_h5ad), "label_key": "cell_type",
                               "condition_keys": ("batch",)})
    run = RunFolder(tmp_path / "run")
    train_run(config, run.root, echo=lambda line: None)
    assert len(reads) == 1, reads
    during_train = json.loads(run.metrics.read_text(encoding="utf-8"))

    evaluate_run(run.root, echo=lambda line: None)  # a command of its own: reads the file
    assert len(reads) == 2
    _assert_same(during_train, json.loads(run.metrics.read_text(encoding="utf-8")))
