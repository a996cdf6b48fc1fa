"""Training throughput and fit of genevae against scvi-tools on the same model and cells.

Both tools train the same architecture (1 hidden layer of 128 units, 10 latent
dimensions, batch normalisation, dropout 0.1 in the encoder and none in the decoder),
the same likelihood, batch size 128, KL weight 1 from the first step (no warm-up), the
same number of epochs, no gradient clipping and a validation pass every epoch, on the
same cells with the same train/validation split.
Runs alternate (genevae, scvi, genevae, scvi, ...) so that drift of the machine hits
both; each run is its own subprocess, so peak RSS is per tool. Goal (issue 5): a
genevae/scvi throughput ratio of at least 3 for NB and ZINB, with no worse fit.

    make bench                                   # creates .venv-bench with scvi-tools
    .venv-bench/bin/python benchmarks/bench_vs_scvi.py --epochs 10 --repeats 3
    .venv-bench/bin/python benchmarks/bench_vs_scvi.py --epochs 2 --repeats 1 --datasets sim  # smoke

Columns, per dataset and likelihood:

- cells/s: training cells per second of wall time of an epoch (the training pass, the
  validation pass and each tool's per-epoch bookkeeping; genevae also evaluates as many
  training cells as validation cells in eval mode), the median over the epochs of all
  repeats; ratio = genevae / scvi. "ratio by repeat" is the range of genevae's repeat i
  over scvi's repeat i (each its median epoch; the two ran one after the other), which
  shows how far the machine's drift moved the ratio. genevae runs ``--precision auto`` (bfloat16 products
  in training mode on CPUs with AVX512-BF16 or AMX; ``--precision fp32`` to compare),
  scvi-tools its default float32.
- val -ELBO: the final epoch's validation negative ELBO, nats per cell (reconstruction
  negative log-likelihood summed over genes, lgamma(x + 1) included, plus KL summed over
  latent dimensions), each tool's own one-sample estimate on the same validation cells;
  the median over repeats.
- kNN acc: 15-nearest-neighbour accuracy of the label from the posterior means of all
  cells, stratified 5-fold (genevae's probe, the same code for both latents), where the
  dataset has labels.
- peak RSS: ``ru_maxrss`` of the training subprocess (imports, data and training), the
  largest over repeats.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp

REPO = Path(__file__).resolve().parent.parent
#: The real dataset, relative to the repository root (a 10x mouse brain subset).
REAL_DATA = REPO / "../shared/data/tenx_mouse_brain_10k_subset.h5ad"
SIM_CELLS, SIM_GENES = 10_000, 2_000
LIKELIHOODS = ("nb", "zinb")
DATASETS = ("real", "sim")

# The shared model and training settings (scvi-tools' defaults, genevae's "scvi" preset).
N_HIDDEN, N_LATENT, N_LAYERS = 128, 10, 1
DROPOUT = 0.1
BATCH_SIZE = 128
VAL_FRACTION = 0.1
SEED = 0
DEFAULT_EPOCHS = 10
DEFAULT_REPEATS = 3


@dataclass(frozen=True)
class Dataset:
    """A benchmark dataset written to disk: the same file for both tools."""

    name: str
    path: Path
    label_key: str | None
    n_cells: int
    n_genes: int


def _keep_modelled(adata: ad.AnnData) -> ad.AnnData:
    """Drop genes without counts, then cells without counts, as genevae's preparation does,
    so that both tools see exactly the same matrix."""
    x = sp.csr_matrix(adata.X, dtype=np.float32)
    genes = np.asarray(x.sum(axis=0)).ravel() > 0
    x = x[:, genes]
    cells = np.asarray(x.sum(axis=1)).ravel() > 0
    kept = ad.AnnData(X=x[cells], obs=adata.obs.iloc[np.flatnonzero(cells)].copy(),
                      var=adata.var.iloc[np.flatnonzero(genes)].copy())
    kept.layers["counts"] = kept.X.copy()
    return kept


def write_dataset(name: str, folder: Path, n_cells: int = SIM_CELLS,
                  n_genes: int = SIM_GENES) -> Dataset:
    """Write dataset ``name`` ("real" or "sim") into ``folder`` and describe it."""
    from genevae.data.simulate import simulate_sc

    if name == "real":
        adata, label_key = ad.read_h5ad(REAL_DATA), None
    else:
        adata, label_key = simulate_sc(n_cells=n_cells, n_genes=n_genes, seed=SEED), "cell_type"
        adata = ad.AnnData(X=adata.X, obs=adata.obs[["cell_type"]].astype(str), var=adata.var)
    adata = _keep_modelled(adata)
    path = folder / f"{name}.h5ad"
    adata.write_h5ad(path)
    return Dataset(name, path, label_key, adata.n_obs, adata.n_vars)


def labels_of(dataset: Dataset) -> np.ndarray | None:
    if dataset.label_key is None:
        return None
    return ad.read_h5ad(dataset.path).obs[dataset.label_key].astype(str).to_numpy()


def split_of(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The training and validation cells: genevae's own seeded split, given to scvi-tools."""
    from genevae.data.split import split_indices

    return split_indices(dataset.n_cells, VAL_FRACTION, SEED, labels_of(dataset))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# -- the two tools (each called inside its own subprocess) ------------------------------


def run_genevae(data: Path, likelihood: str, epochs: int, label_key: str | None,
                val_idx: np.ndarray, latent_out: Path, precision: str = "auto") -> dict:
    """Train genevae's "scvi" preset; per-epoch wall times, final validation -ELBO."""
    from genevae.config import apply_preset, build_config
    from genevae.data.split import split_indices
    from genevae.services.fitted import encode_tensors
    from genevae.services.fitting import fit_prepared
    from genevae.services.inputs import read_and_prepare

    sections = apply_preset("scvi")
    sections["data"] = {"path": str(data), "val_fraction": VAL_FRACTION}
    if label_key is not None:
        sections["data"]["label_key"] = label_key
    sections["model"].update(likelihood=likelihood, n_hidden=N_HIDDEN, n_latent=N_LATENT,
                             n_layers=N_LAYERS, dropout=DROPOUT,
                             decoder_dropout=0.0)
    sections["objective"].update(beta=1.0, kl_schedule="constant", loss_reduction="sum")
    sections["train"].update(epochs=epochs, batch_size=BATCH_SIZE, seed=SEED, precision=precision,
                             grad_clip=0.0)  # scvi-tools clips no gradients
    inputs = read_and_prepare(build_config(sections, where="bench"))
    config, preprocessor, prepared = inputs.config, inputs.preprocessor, inputs.prepared
    _, genevae_val = split_indices(prepared.n_cells, VAL_FRACTION, SEED, prepared.labels)
    if not np.array_equal(genevae_val, val_idx):
        raise RuntimeError("genevae's validation cells differ from the benchmark's split")
    stamps = [time.perf_counter()]
    fitted, result = fit_prepared(preprocessor, prepared, config, None,
                                  echo=lambda line: stamps.append(time.perf_counter())
                                  if line.startswith("epoch") else None)
    history = result.history
    qz_mean, _ = encode_tensors(fitted.model, prepared.x, prepared.library, prepared.conditions)
    np.save(latent_out, qz_mean)
    return {
        "epoch_seconds": list(np.diff(stamps)),
        "n_train_cells": int(prepared.n_cells - len(val_idx)),
        "val_neg_elbo": float(history.values("val_recon")[-1] + history.values("val_kl")[-1]),
        "peak_rss_mb": _peak_rss_mb(),
    }


def run_scvi(data: Path, likelihood: str, epochs: int, train_idx: np.ndarray,
             val_idx: np.ndarray, latent_out: Path) -> dict:
    """Train scvi-tools' SCVI with the same settings; per-epoch wall times, final -ELBO."""
    import logging
    import warnings

    import lightning.pytorch as pl
    import scvi

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    scvi.settings.seed = SEED
    scvi.settings.verbosity = logging.ERROR

    class EpochTimer(pl.Callback):
        """Wall time from the start of one training epoch to the start of the next."""

        def __init__(self) -> None:
            self.stamps: list[float] = []

        def on_train_epoch_start(self, trainer, module) -> None:
            self.stamps.append(time.perf_counter())

        def on_train_end(self, trainer, module) -> None:
            self.stamps.append(time.perf_counter())

    adata = ad.read_h5ad(data)
    scvi.model.SCVI.setup_anndata(adata)
    model = scvi.model.SCVI(adata, n_hidden=N_HIDDEN, n_latent=N_LATENT, n_layers=N_LAYERS,
                            dropout_rate=DROPOUT, gene_likelihood=likelihood)
    timer = EpochTimer()
    model.train(
        max_epochs=epochs, batch_size=BATCH_SIZE, accelerator="cpu", devices=1,
        early_stopping=False, check_val_every_n_epoch=1, enable_progress_bar=False,
        datasplitter_kwargs={"external_indexing": [np.asarray(train_idx), np.asarray(val_idx)]},
        plan_kwargs={"n_epochs_kl_warmup": None, "n_steps_kl_warmup": None,
                     "max_kl_weight": 1.0, "min_kl_weight": 1.0},
        callbacks=[timer],
    )
    np.save(latent_out, model.get_latent_representation())
    return {
        "epoch_seconds": list(np.diff(timer.stamps)),
        "n_train_cells": len(train_idx),
        "val_neg_elbo": float(model.history["elbo_validation"].iloc[-1, 0]),
        "peak_rss_mb": _peak_rss_mb(),
    }


def run_in_subprocess(tool: str, dataset: Dataset, likelihood: str, epochs: int,
                      folder: Path, tag: str, threads: int | None = None,
                      precision: str = "auto") -> dict:
    """Run one training of ``tool`` in a fresh interpreter; its result dict plus the latent."""
    train_idx, val_idx = split_of(dataset)
    split_file = folder / f"split_{dataset.name}.npz"
    np.savez(split_file, train=train_idx, val=val_idx)
    out = folder / f"{tag}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", tool,
               "--data", str(dataset.path), "--likelihood", likelihood, "--epochs", str(epochs),
               "--split", str(split_file), "--result", str(out)]
    if dataset.label_key:
        command += ["--label-key", dataset.label_key]
    if threads:
        command += ["--threads", str(threads)]
    if tool == "genevae":
        command += ["--precision", precision]
    subprocess.run(command, check=True, cwd=REPO)
    result = json.loads(out.read_text())
    result["latent"] = np.load(result.pop("latent_path"))
    return result


def worker(args: argparse.Namespace) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    split = np.load(args.split)
    latent = Path(args.result).with_suffix(".npy")
    if args.worker == "genevae":
        result = run_genevae(Path(args.data), args.likelihood, args.epochs, args.label_key,
                             split["val"], latent, args.precision)
    else:
        result = run_scvi(Path(args.data), args.likelihood, args.epochs, split["train"],
                          split["val"], latent)
    result["latent_path"] = str(latent)
    Path(args.result).write_text(json.dumps(result))


# -- the table ------------------------------------------------------------------------------


def knn_accuracy(latent: np.ndarray, labels: np.ndarray | None) -> float | None:
    """kNN (k = 15) accuracy of ``labels`` from ``latent``, stratified 5-fold (genevae's probe)."""
    if labels is None:
        return None
    from genevae.diagnosis.probes import probe

    return probe(latent, labels, seed=SEED).knn.accuracy_mean


def cells_per_s(run: dict) -> float:
    """One run's training cells per second of its median epoch."""
    return run["n_train_cells"] / statistics.median(run["epoch_seconds"])


def summarize(runs: list[dict], labels: np.ndarray | None) -> dict:
    """One tool's repeats of one dataset and likelihood -> the table's numbers."""
    if not runs:
        return {}
    seconds = [s for run in runs for s in run["epoch_seconds"]]
    return {
        "cells_per_s": runs[0]["n_train_cells"] / statistics.median(seconds),
        "cells_per_s_by_repeat": [cells_per_s(run) for run in runs],
        "val_neg_elbo": statistics.median(run["val_neg_elbo"] for run in runs),
        "knn": knn_accuracy(runs[-1]["latent"], labels),
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
    }


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def format_table(rows: list[dict]) -> str:
    """Markdown table; a row holds dataset, likelihood and the genevae/scvi summaries."""
    header = ("| data | likelihood | genevae cells/s | scvi cells/s | ratio | genevae val -ELBO "
              "| scvi val -ELBO | ELBO diff | genevae kNN | scvi kNN | genevae RSS MB "
              "| scvi RSS MB | ratio by repeat |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        g, s = row["genevae"], row.get("scvi") or {}
        ratio = g["cells_per_s"] / s["cells_per_s"] if s else None
        diff = (g["val_neg_elbo"] - s["val_neg_elbo"]) / abs(s["val_neg_elbo"]) if s else None
        # genevae's repeat i against scvi's repeat i (run next to it): the drift's spread
        pairs = [a / b for a, b in zip(g.get("cells_per_s_by_repeat", []),
                                       s.get("cells_per_s_by_repeat", []), strict=False)]
        spread = f"{min(pairs):.2f}-{max(pairs):.2f}" if pairs else "n/a"
        lines.append(
            f"| {row['dataset']} | {row['likelihood']} | {g['cells_per_s']:,.0f} "
            f"| {_fmt(s.get('cells_per_s'), ',.0f')} | {_fmt(ratio, '.2f')} "
            f"| {g['val_neg_elbo']:.2f} | {_fmt(s.get('val_neg_elbo'), '.2f')} "
            f"| {_fmt(None if diff is None else 100 * diff, '+.2f')}{'' if diff is None else '%'} "
            f"| {_fmt(g['knn'], '.3f')} | {_fmt(s.get('knn'), '.3f')} "
            f"| {g['peak_rss_mb']:,.0f} | {_fmt(s.get('peak_rss_mb'), ',.0f')} | {spread} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--likelihoods", default=",".join(LIKELIHOODS))
    parser.add_argument("--tools", default="genevae,scvi",
                        help="genevae alone skips scvi-tools (its columns read n/a)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in both tools (default: torch's, one per core)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="genevae's --precision (default auto: bf16 products where the "
                        "CPU has AVX512-BF16 or AMX); scvi-tools runs its default, float32")
    parser.add_argument("--worker", choices=("genevae", "scvi"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--likelihood", help=argparse.SUPPRESS)
    parser.add_argument("--label-key", help=argparse.SUPPRESS)
    parser.add_argument("--split", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return
    tools = args.tools.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in args.datasets.split(","):
            dataset = write_dataset(name, folder)
            labels = labels_of(dataset)
            for likelihood in args.likelihoods.split(","):
                runs: dict[str, list[dict]] = {tool: [] for tool in tools}
                for repeat in range(args.repeats):
                    for tool in tools:  # alternating: A B A B
                        tag = f"{tool}_{name}_{likelihood}_{repeat}"
                        result = run_in_subprocess(tool, dataset, likelihood, args.epochs,
                                                   folder, tag, args.threads, args.precision)
                        runs[tool].append(result)
                        print(f"{tag}: {cells_per_s(result):,.0f} cells/s, "
                              f"val -ELBO {result['val_neg_elbo']:.2f}", flush=True)
                rows.append({"dataset": f"{name} {dataset.n_cells}x{dataset.n_genes}",
                             "likelihood": likelihood,
                             **{tool: summarize(runs[tool], labels) for tool in tools}})
    import torch

    threads = args.threads or torch.get_num_threads()
    from genevae.train.precision import resolve_precision

    print(f"\n{args.epochs} epochs, {args.repeats} repeats, batch {BATCH_SIZE}, "
          f"{threads} torch threads, genevae precision "
          f"{resolve_precision(args.precision, torch.device('cpu'))}")
    print(format_table(rows))


if __name__ == "__main__":
    main()
