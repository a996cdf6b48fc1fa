"""The held-out runs of the diagnosis benchmark: new runs the rules were not tuned to.

genevae's diagnosis rules were revised after scoring ``corpus_plan.py``'s corpus, so
that corpus can no longer test them honestly. These runs are an independent check:
the same sources, formats and datasets in a different mix, with settings values not
used in ``corpus_plan.py`` wherever possible (KL weights 3, 5, 15, 25, 70; 4, 7, 12,
25, 45 and 90 epochs; ``n_latent`` 5, 8, 16, 24; learning rates 2e-5, 3e-3, 0.3, 3;
warm-ups of 3, 15 and 30 epochs; tiny pools of 90 and 200 cells; 1,500 mouse-brain
cells; dropout). Every run id starts with ``heldout_``, so every seed is new.

The settings were fixed before any held-out run was trained; no run is dropped or
re-tuned after its truth or genevae's verdict is seen. ``intent`` is a design note,
never the truth (``truth.py`` measures it). Generated once with the rules frozen:

    .venv-bench/bin/python benchmarks/diagnosis/generate.py --plan heldout
"""

from __future__ import annotations

from corpus_plan import held_out_runs
from runs import RunSpec

__all__ = ["heldout_plan", "PREFIX"]

#: Every held-out run id starts with this (new ids, hence new seeds).
PREFIX = "heldout_"

#: A decoder much bigger than the encoder (memorises a tiny training set).
_BIG_DECODER = {"decoder_hidden": 512, "decoder_layers": 2}
#: Tiny-data settings of the loops and Lightning: few cells, little KL, a big decoder.
_TINY90 = {"n_train_cells": 90, "batch_size": 32, "max_kl_weight": 0.05, "n_latent": 24,
           **_BIG_DECODER}

# source, style, name, dataset, N, settings, intent.
# scvi-tools SCVI (keyword names of SCVI and plan_kwargs; n_pool_cells subsamples the
# pool; scvi's default warm-up is 400 epochs); styles are history_ exports.
_SCVI = [
    ("csv", "warm3_e45", "pbmc68k", 45, {"n_epochs_kl_warmup": 3}, "healthy"),
    ("json_pandas", "warm15_lat24_e90_nb", "citeseq", 90,
     {"n_epochs_kl_warmup": 15, "n_latent": 24, "gene_likelihood": "nb"}, "healthy"),
    ("csv", "default_lat16_e45", "mouse_brain", 45, {"n_latent": 16},
     "default 400-epoch warm-up, unfinished"),
    ("json_lists", "default_e25", "citeseq", 25, {}, "default warm-up, short"),
    ("csv", "lr3e-3_warm30_e90", "pbmc68k", 90, {"lr": 3e-3, "n_epochs_kl_warmup": 30},
     "healthy, faster lr"),
    ("csv", "kl70_e25", "pbmc68k", 25, {"max_kl_weight": 70.0, "n_epochs_kl_warmup": 0},
     "collapse: KL weight 70"),
    ("json_lists", "kl25_e45", "citeseq", 45, {"max_kl_weight": 25.0, "n_epochs_kl_warmup": 0},
     "collapse: KL weight 25"),
    ("csv", "kl5_lat8_e45", "mouse_brain", 45,
     {"max_kl_weight": 5.0, "n_latent": 8, "n_epochs_kl_warmup": 0}, "KL weight 5: collapse?"),
    ("json_pandas", "e4", "mouse_brain", 4, {"n_epochs_kl_warmup": 0}, "not converged: 4 epochs"),
    ("csv", "e7_lat5", "pbmc68k", 7, {"n_latent": 5, "n_epochs_kl_warmup": 0},
     "not converged: 7 epochs"),
    ("csv", "lr2e-5_e25", "mouse_brain", 25, {"lr": 2e-5, "n_epochs_kl_warmup": 0},
     "not converged: tiny lr"),
    ("json_lists", "lr0.3_e12", "pbmc68k", 12, {"lr": 0.3, "n_epochs_kl_warmup": 0},
     "diverged? lr 0.3"),
    ("csv", "tiny200_big_e90", "pbmc68k", 90,
     {"n_pool_cells": 200, "n_hidden": 512, "n_layers": 2, "n_epochs_kl_warmup": 0,
      "max_kl_weight": 0.05, "batch_size": 32}, "overfitting: 200 cells, big net"),
    ("json_pandas", "tiny90_big_e90", "citeseq", 90,
     {"n_pool_cells": 90, "n_hidden": 512, "n_layers": 2, "n_epochs_kl_warmup": 0,
      "max_kl_weight": 0.05, "batch_size": 32}, "overfitting: 90 cells, big net"),
    ("csv", "pool1500_warm15_e25", "mouse_brain", 25,
     {"n_pool_cells": 1500, "n_epochs_kl_warmup": 15}, "1,500 cells, warm-up 15"),
    ("csv", "warm3_lat5_e45", "geuvadis", 45,
     {"n_epochs_kl_warmup": 3, "n_latent": 5, "batch_size": 16}, "tiny bulk data"),
]

# Plain loops (``loop``: ten text styles, two runs each), Keras-style text and Lightning:
# train_loop.py / vae_torch.py keyword names.
_OTHERS = [
    ("loop", "reference", "nb_warm15_lat8", "pbmc68k", 45,
     {"n_epochs_kl_warmup": 15, "n_latent": 8}, "healthy"),
    ("loop", "reference", "nb_kl25", "citeseq", 25, {"max_kl_weight": 25.0},
     "collapse: KL weight 25"),
    ("loop", "bracket", "nb_lat24_warm3", "mouse_brain", 25,
     {"n_latent": 24, "n_epochs_kl_warmup": 3}, "healthy"),
    ("loop", "bracket", "nb_e4", "pbmc68k", 4, {}, "not converged: 4 epochs"),
    ("loop", "terse", "gauss_lr3e-3", "citeseq", 45,
     {"decoder": "gaussian", "lr": 3e-3, "n_epochs_kl_warmup": 3}, "healthy"),
    ("loop", "terse", "nb_adam_lr3", "pbmc68k", 12, {"lr": 3.0}, "diverged: lr 3"),
    ("loop", "kv_comma", "nb_tiny90_big", "pbmc68k", 90, dict(_TINY90),
     "overfitting: 90 cells, big decoder"),
    ("loop", "kv_comma", "mse_warm30_lat5", "mouse_brain", 45,
     {"decoder": "mse", "n_epochs_kl_warmup": 30, "n_latent": 5}, "healthy?"),
    ("loop", "tqdm", "nb_mean_mouse", "mouse_brain", 25, {"reduction": "mean"},
     "collapse: per-element mean"),
    ("loop", "tqdm", "nb_kl3_lat5", "pbmc68k", 45, {"max_kl_weight": 3.0, "n_latent": 5},
     "KL weight 3"),
    ("loop", "jsonl", "sgd_lr0.05", "citeseq", 7, {"optimizer": "sgd", "lr": 0.05},
     "diverged: SGD on a summed loss"),
    ("loop", "jsonl", "nb_lr2e-5", "mouse_brain", 12, {"lr": 2e-5}, "not converged: tiny lr"),
    ("loop", "pytorch_example", "nb_warm3_lat8", "citeseq", 45,
     {"n_epochs_kl_warmup": 3, "n_latent": 8}, "healthy"),
    ("loop", "pytorch_example", "nb_e7", "mouse_brain", 7, {}, "not converged: 7 epochs"),
    ("loop", "per_step", "nb_kl5_lat24", "citeseq", 25, {"max_kl_weight": 5.0, "n_latent": 24},
     "KL weight 5"),
    ("loop", "per_step", "gauss_tiny200_big", "pbmc68k", 90,
     {"n_train_cells": 200, "decoder": "gaussian", "batch_size": 32, "max_kl_weight": 0.05,
      "n_latent": 24, **_BIG_DECODER}, "overfitting? 200 cells, big decoder"),
    ("loop", "dict", "nb_h256_warm15_dropout", "pbmc68k", 45,
     {"n_hidden": 256, "n_epochs_kl_warmup": 15, "dropout": 0.1}, "healthy"),
    ("loop", "dict", "mse_mean_kl15", "pbmc68k", 25,
     {"decoder": "mse", "reduction": "mean", "max_kl_weight": 15.0}, "collapse"),
    ("loop", "logging", "nb_geuvadis_warm15", "geuvadis", 45,
     {"batch_size": 16, "n_latent": 5, "n_epochs_kl_warmup": 15}, "tiny bulk data"),
    ("loop", "logging", "gauss_lr0.3", "mouse_brain", 12, {"decoder": "gaussian", "lr": 0.3},
     "diverged? lr 0.3"),
    ("keras", "keras_bar", "nb_lat5_warm3", "mouse_brain", 25,
     {"n_latent": 5, "n_epochs_kl_warmup": 3}, "healthy"),
    ("keras", "keras_bar", "nb_kl70", "pbmc68k", 25, {"max_kl_weight": 70.0},
     "collapse: KL weight 70"),
    ("keras", "keras_v2", "nb_tiny90_citeseq_big", "citeseq", 90, dict(_TINY90),
     "overfitting: 90 cells, big decoder"),
    ("keras", "keras_v2", "nb_lr2e-5", "citeseq", 25, {"lr": 2e-5}, "not converged: tiny lr"),
    ("lightning_csv", "csv_steps", "nb_warm30_lat8", "pbmc68k", 90,
     {"n_epochs_kl_warmup": 30, "n_latent": 8}, "healthy"),
    ("lightning_csv", "csv_steps", "nb_kl15_mouse", "mouse_brain", 25, {"max_kl_weight": 15.0},
     "collapse? KL weight 15"),
    ("lightning_csv", "csv_epoch", "nb_tiny90_big", "pbmc68k", 90, dict(_TINY90),
     "overfitting: 90 cells, big decoder"),
    ("lightning_csv", "csv_epoch", "nb_e7", "citeseq", 7, {}, "not converged: 7 epochs"),
    ("lightning_tensorboard", "tb_steps", "gauss_lr3", "pbmc68k", 12,
     {"decoder": "gaussian", "lr": 3.0}, "diverged: lr 3"),
    ("lightning_tensorboard", "tb_steps", "nb_lat16_warm3", "mouse_brain", 25,
     {"n_latent": 16, "n_epochs_kl_warmup": 3}, "healthy"),
    ("lightning_tensorboard", "tb_epoch", "nb_lat24_warm3", "citeseq", 45,
     {"n_latent": 24, "n_epochs_kl_warmup": 3}, "healthy"),
    ("lightning_tensorboard", "tb_epoch", "nb_mean_citeseq", "citeseq", 25,
     {"reduction": "mean"}, "collapse: per-element mean"),
]


def heldout_plan() -> list[RunSpec]:
    """Every held-out run, in generation order (run ids ``heldout_<source>_...``)."""
    return held_out_runs(PREFIX, _SCVI, _OTHERS)
