"""A whole scvi-tools training, as a user's script runs it (issue 19): the side "B" of
``benchmarks/bench_whole_process.py``, which times ``python scvi_whole_run.py ...`` from
spawn to exit against the whole ``genevae train`` process.

It imports scvi-tools, reads the ``.h5ad``, drops genes without counts and then cells
without counts (what genevae's preparation drops, so both tools model the same matrix;
``--all-genes`` keeps every gene, as a script that filters nothing would),
sets up the AnnData, trains SCVI with the benchmark's architecture and settings
(latent 10, hidden 128, 1 layer, the given likelihood, batch 128, KL weight 1 from the
first step, validation every epoch, no early stopping) and prints the final validation
negative ELBO (nats per cell) on its last line as ``RESULT {json}``.

    .venv-bench/bin/python benchmarks/scvi_whole_run.py --data ../shared/data/tenx_mouse_brain_10k_subset.h5ad \
        --likelihood nb --epochs 20
    # the same validation cells as genevae's run (written by bench_whole_process.py):
    .venv-bench/bin/python benchmarks/scvi_whole_run.py --data FILE --split split.npz

Without ``--split`` scvi-tools draws its own split with ``train_size`` = 1 - val fraction.
Nothing of genevae is imported here.
"""

from __future__ import annotations

import argparse
import json

import anndata as ad
import numpy as np
import scvi

N_HIDDEN, N_LATENT, N_LAYERS = 128, 10, 1
BATCH_SIZE = 128
VAL_FRACTION = 0.1  # genevae's default --val-fraction
SEED = 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--likelihood", choices=("nb", "zinb"), default="nb")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--split", help=".npz with 'train' and 'val' indices of the kept cells")
    parser.add_argument("--all-genes", action="store_true",
                        help="keep the genes without counts (only the cells without counts go)")
    args = parser.parse_args(argv)

    scvi.settings.seed = SEED
    adata = ad.read_h5ad(args.data)
    # genes without counts, then cells without counts (scanpy's filter_genes/filter_cells
    # with min_counts=1, without importing scanpy)
    if not args.all_genes:
        adata = adata[:, np.asarray(adata.X.sum(axis=0)).ravel() > 0]
    adata = adata[np.asarray(adata.X.sum(axis=1)).ravel() > 0].copy()

    scvi.model.SCVI.setup_anndata(adata)
    model = scvi.model.SCVI(adata, n_hidden=N_HIDDEN, n_latent=N_LATENT, n_layers=N_LAYERS,
                            gene_likelihood=args.likelihood)
    if args.split:
        split = np.load(args.split)
        split_kwargs = {"datasplitter_kwargs": {
            "external_indexing": [np.asarray(split["train"]), np.asarray(split["val"])]}}
    else:
        split_kwargs = {"train_size": 1.0 - VAL_FRACTION}
    model.train(
        max_epochs=args.epochs, batch_size=BATCH_SIZE, accelerator="cpu", devices=1,
        early_stopping=False, check_val_every_n_epoch=1, enable_progress_bar=False,
        plan_kwargs={"n_epochs_kl_warmup": None, "n_steps_kl_warmup": None,
                     "max_kl_weight": 1.0, "min_kl_weight": 1.0},
        **split_kwargs,
    )
    history = model.history
    result = {
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "epochs": int(len(history["elbo_validation"])),
        "val_neg_elbo": float(history["elbo_validation"].iloc[-1, 0]),
    }
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
