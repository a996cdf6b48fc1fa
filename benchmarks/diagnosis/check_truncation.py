"""Check that the first N epochs of a 2N-epoch SCVI run are the N-epoch run.

The truth's ``not_converged`` trains 2N epochs and shows the diagnoser the first N;
this holds only if nothing in training depends on ``max_epochs``. Trains SCVI on the
PBMC pool for N and for 2N epochs (same seed; with and without the KL warm-up ending
inside the run) and compares the histories value for value.

    .venv-bench/bin/python benchmarks/diagnosis/check_truncation.py
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import scvi
import torch
from bench_data import load_dataset
from run_scvi import TRAIN_SIZE, history_frame

N_EPOCHS = 6
PLANS = ({}, {"n_epochs_kl_warmup": 4}, {"n_epochs_kl_warmup": 0, "max_kl_weight": 10.0})


def _history(pool, max_epochs: int, plan: dict):
    scvi.settings.seed = 0
    adata = pool.copy()
    scvi.model.SCVI.setup_anndata(adata)
    model = scvi.model.SCVI(adata)
    model.train(max_epochs=max_epochs, accelerator="cpu", devices=1, train_size=TRAIN_SIZE,
                check_val_every_n_epoch=1, plan_kwargs=plan, enable_progress_bar=False,
                enable_model_summary=False)
    return history_frame(model)


def main() -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    pool = load_dataset("pbmc68k").pool
    for plan in PLANS:
        short = _history(pool, N_EPOCHS, plan)
        long = _history(pool, 2 * N_EPOCHS, plan).iloc[:N_EPOCHS]
        same = np.allclose(short.to_numpy(float), long.to_numpy(float), rtol=0, atol=0,
                           equal_nan=True)
        print(f"plan {plan}: first {N_EPOCHS} epochs of a {2 * N_EPOCHS}-epoch run "
              f"{'identical to' if same else 'DIFFER from'} the {N_EPOCHS}-epoch run")


if __name__ == "__main__":
    main()
