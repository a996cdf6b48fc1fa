"""Re-derive every run's true class from its stored measurements (``truth.py``).

The measurements in ``truth.json`` are what training produced; the true class is a
function of them (:func:`truth.classify`). When that function is revised (its
docstring says when and why), this rewrites ``true_class``, ``conditions`` and
``reasons`` of every run of the named corpus folders without retraining, and prints
every run whose class changed.

    .venv-bench/bin/python benchmarks/diagnosis/retruth.py corpus heldout heldout2
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from truth import classify

HERE = Path(__file__).resolve().parent


def save_truth(document: dict, path: Path) -> None:
    """Write a corpus's ``truth.json`` (non-finite measurements are stored as strings)."""
    path.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")


def retruth(run: dict) -> tuple[str, dict, list[str]]:
    """The true class, conditions and reasons of one stored run under ``truth.py``.

    Non-finite measurements are stored as strings ("nan", "inf"), which ``float`` reads.
    """
    m = run["measured"]
    truth = classify(
        heldout_loss=[float(v) for v in m["heldout_loss_by_epoch"]],
        n_logged=run["n_epochs"],
        last_logged_finite=all(math.isfinite(float(v)) for v in m["last_logged_losses"].values()),
        params_finite=m["params_finite"],
        rate_nats=float(m["rate_nats"]),
        kl_per_dim_nats=[float(v) for v in m["kl_per_dim_nats"]],
        delta_nll_nats=float(m["delta_nll_nats"]),
        probe_balanced_accuracy=m["probe_balanced_accuracy"],
        probe_chance=m["probe_chance"])
    return truth.true_class, truth.conditions, list(truth.reasons)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="+", help="corpus folders under benchmarks/diagnosis")
    args = parser.parse_args(argv)
    for name in args.corpora:
        path = HERE / name / "truth.json"
        document = json.loads(path.read_text())
        for run in document["runs"]:
            true_class, conditions, reasons = retruth(run)
            if true_class != run["true_class"]:
                print(f"{name}/{run['run_id']}: {run['true_class']} -> {true_class} "
                      f"({'; '.join(reasons)})")
            run.update(true_class=true_class, conditions=conditions, reasons=reasons)
        save_truth(document, path)


if __name__ == "__main__":
    main()
