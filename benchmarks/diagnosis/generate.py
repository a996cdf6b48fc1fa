"""Generate the diagnosis corpus: train every run of ``corpus_plan.py``, write its log
into ``corpus/<run_id>/`` as the tool wrote it, and its measured truth into
``corpus/truth.json``.

One torch thread, one training at a time (a shared 2-core machine). Runs are seeded;
``--only`` regenerates some runs and keeps the others' entries. ``--plan heldout``
trains the held-out runs of ``heldout_plan.py`` instead, into ``heldout/`` unless
``--corpus`` names another folder; ``--plan heldout2`` those of ``heldout2_plan.py``,
into ``heldout2/``; ``--plan heldout3``, ``--plan heldout4`` and ``--plan heldout5`` those of
``heldout3_plan.py``, ``heldout4_plan.py`` and ``heldout5_plan.py``, into ``heldout3/``,
``heldout4/`` and ``heldout5/``.

    .venv-bench/bin/python benchmarks/diagnosis/generate.py [--only RUN_ID ...]
    .venv-bench/bin/python benchmarks/diagnosis/generate.py --plan heldout [--corpus DIR]
    .venv-bench/bin/python benchmarks/diagnosis/generate.py --plan heldout2 [--corpus DIR]
    .venv-bench/bin/python benchmarks/diagnosis/generate.py --plan heldout3 [--corpus DIR]
    .venv-bench/bin/python benchmarks/diagnosis/generate.py --plan heldout4 [--corpus DIR]
    .venv-bench/bin/python benchmarks/diagnosis/generate.py --plan heldout5 [--corpus DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from bench_data import load_dataset
from corpus_plan import corpus_plan
from heldout2_plan import heldout2_plan
from heldout3_plan import heldout3_plan
from heldout4_plan import heldout4_plan
from heldout5_plan import heldout5_plan
from heldout_plan import heldout_plan
from retruth import save_truth
from runs import RunSpec, SourceResult
from truth import classify

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
#: Name of the truth file in a corpus folder.
TRUTH_NAME = "truth.json"
#: ``--plan`` name -> (the plan, its default folder, the truth file's ``about``).
PLANS = {
    "corpus": (corpus_plan, CORPUS,
               "Issue 18 diagnosis benchmark: one entry per trained run; true_class "
               "is measured from the model (benchmarks/diagnosis/truth.py)."),
    "heldout": (heldout_plan, HERE / "heldout",
                "Issue 18 diagnosis benchmark, held-out runs (heldout_plan.py, generated "
                "once with the rules frozen): one entry per trained run; true_class is "
                "measured from the model (benchmarks/diagnosis/truth.py)."),
    "heldout2": (heldout2_plan, HERE / "heldout2",
                 "Issue 18 diagnosis benchmark, second held-out runs (heldout2_plan.py, "
                 "generated once, to be scored once after the rules are final): one entry "
                 "per trained run; true_class is measured from the model "
                 "(benchmarks/diagnosis/truth.py)."),
    "heldout3": (heldout3_plan, HERE / "heldout3",
                 "Issue 18 diagnosis benchmark, third held-out runs (heldout3_plan.py, "
                 "generated once, scored once with the final rules): one entry per trained "
                 "run; true_class is measured from the model (benchmarks/diagnosis/truth.py)."),
    "heldout4": (heldout4_plan, HERE / "heldout4",
                 "Issue 18 diagnosis benchmark, fourth held-out runs (heldout4_plan.py, "
                 "generated once, scored once with the rules heldout3 was scored with): one "
                 "entry per trained run; true_class is measured from the model "
                 "(benchmarks/diagnosis/truth.py)."),
    "heldout5": (heldout5_plan, HERE / "heldout5",
                 "Issue 18 diagnosis benchmark, fifth held-out runs (heldout5_plan.py, "
                 "generated once, scored once with the unsettled-validation rule): one "
                 "entry per trained run; true_class is measured from the model "
                 "(benchmarks/diagnosis/truth.py)."),
}


def _train(spec: RunSpec, folder: Path) -> SourceResult:
    data = load_dataset(spec.dataset)
    if spec.source == "scvi":
        from run_scvi import train_scvi
        return train_scvi(spec, data, folder)
    if spec.source.startswith("lightning"):
        from run_lightning import train_lightning
        return train_lightning(spec, data, folder)
    from run_loops import train_plain
    return train_plain(spec, data, folder)


def _entry(spec: RunSpec, result: SourceResult, seconds: float, corpus: Path) -> dict:
    latent = result.latent
    truth = classify(
        heldout_loss=result.heldout_loss, n_logged=spec.n_epochs,
        last_logged_finite=result.last_logged_finite, params_finite=result.params_finite,
        rate_nats=latent.rate_nats, kl_per_dim_nats=latent.kl_per_dim_nats,
        delta_nll_nats=latent.delta_nll_nats,
        probe_balanced_accuracy=latent.probe_balanced_accuracy, probe_chance=latent.probe_chance)
    measured = result.measured()
    measured["n_active_dims"] = sum(kl > 0.01 for kl in latent.kl_per_dim_nats)
    return {
        **asdict(spec),
        "log": str(result.log_path.relative_to(corpus)),
        "n_epochs_trained": 2 * spec.n_epochs,
        "measured": measured,
        "true_class": truth.true_class,
        "conditions": truth.conditions,
        "reasons": list(truth.reasons),
        "seconds": round(seconds, 1),
    }


def _load(truth_file: Path) -> dict:
    if truth_file.exists():
        return json.loads(truth_file.read_text())
    return {"runs": [], "failed": []}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="run ids to regenerate")
    parser.add_argument("--plan", choices=sorted(PLANS), default="corpus",
                        help="which runs: corpus_plan.py (default) or heldoutN_plan.py")
    parser.add_argument("--corpus", type=Path,
                        help="folder to write (default: the plan's folder, e.g. heldout4/)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    make_plan, default_folder, about = PLANS[args.plan]
    corpus = (args.corpus or default_folder).resolve()
    truth_file = corpus / TRUTH_NAME
    plan = make_plan()
    wanted = set(args.only or [s.run_id for s in plan])
    unknown = wanted - {s.run_id for s in plan}
    if unknown:
        sys.exit(f"unknown run ids: {', '.join(sorted(unknown))}")
    corpus.mkdir(exist_ok=True)
    document = _load(truth_file) if args.only else {"runs": [], "failed": []}
    kept = {r["run_id"]: r for r in document["runs"] if r["run_id"] not in wanted}
    failed = [f for f in document.get("failed", []) if f["run_id"] not in wanted]
    entries = dict(kept)
    start_all = time.perf_counter()
    for i, spec in enumerate(plan):
        if spec.run_id not in wanted:
            continue
        folder = corpus / spec.run_id
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        start = time.perf_counter()
        try:
            result = _train(spec, folder)
        except Exception as error:  # a training that crashes leaves no log to diagnose
            failed.append({"run_id": spec.run_id, "error": f"{type(error).__name__}: {error}"})
            print(f"[{i + 1}/{len(plan)}] {spec.run_id}: FAILED {error}", flush=True)
            shutil.rmtree(folder, ignore_errors=True)
            continue
        entry = _entry(spec, result, time.perf_counter() - start, corpus)
        entries[spec.run_id] = entry
        print(f"[{i + 1}/{len(plan)}] {spec.run_id}: {entry['true_class']} "
              f"({entry['seconds']} s) {'; '.join(entry['reasons'])}", flush=True)
        order = [s.run_id for s in plan]
        document = {
            "about": about,
            "environment": {"python": platform.python_version(), "torch": torch.__version__,
                            "platform": platform.platform()},
            "runs": sorted(entries.values(), key=lambda r: order.index(r["run_id"])),
            "failed": failed,
        }
        save_truth(document, truth_file)
    print(f"generated {len(wanted)} runs in {time.perf_counter() - start_all:.0f} s")


if __name__ == "__main__":
    main()
