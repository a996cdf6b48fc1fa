"""The third held-out runs of the diagnosis benchmark: the final, untouched test set.

The diagnosis rules were revised on the runs of ``corpus_plan.py``, ``heldout_plan.py``
and, once scored, ``heldout2_plan.py``, so none of them tests the rules honestly any
more. These 64 runs are the check of the final rules: the same sources, formats and
datasets, with settings values used by no earlier plan wherever possible (KL weights
0.05, 0.5, 4, 12, 30, 60, 250; 7, 12, 24, 45, 80 and 130 epochs; ``n_latent`` 4, 6, 14,
30, 48; learning rates 1e-4, 3e-4, 0.1, 0.8, 5; dropout 0.1 and 0.3; warm-ups of 10, 40
and 100 epochs, some unfinished at N; scvi-tools' default 400-epoch warm-up in 24- and
45-epoch runs; hidden layers of 32 and 256 units, 2 and 3 layers; batch sizes 64 and
256; tiny pools of 60, 150 and 300 cells with big networks). Every run id starts with
``heldout3_``, so every seed is new.

The settings and the scoring rules (``score.py``, including how a log without KL is
scored) were fixed and committed before any of these runs was trained; no run is
dropped or re-tuned after its truth is seen. ``intent`` is a design note, never the
truth (``truth.py`` measures it). Generated once, scored once, after the rules are final:

    .venv-bench/bin/python benchmarks/diagnosis/generate.py --plan heldout3
    make bench-diagnosis-heldout3
"""

from __future__ import annotations

from corpus_plan import held_out_runs, scvi_tiny_settings, tiny_settings
from runs import RunSpec

__all__ = ["heldout3_plan", "PREFIX"]

#: Every run id of this plan starts with this (new ids, hence new seeds).
PREFIX = "heldout3_"

def _tiny(n_cells: int, n_latent: int) -> dict:
    return tiny_settings(n_cells, n_latent, batch_size=64, kl_weight=0.05, decoder_hidden=512,
                         decoder_layers=3)


def _scvi_tiny(n_cells: int) -> dict:
    """Pools of 60, 150 and 300 cells leave 54, 135 and 270 training cells: no last batch
    of one cell at batch size 64 (scvi-tools' batch norm refuses one)."""
    return scvi_tiny_settings(n_cells, n_hidden=512, n_layers=3, batch_size=64, kl_weight=0.05)


# style, name, dataset, N, settings, intent -- scvi-tools SCVI (keyword names of SCVI
# and plan_kwargs; n_pool_cells subsamples the pool; scvi's default warm-up is 400
# epochs); styles are history_ exports.
_SCVI = [
    ("csv", "warm10_lat14_e45", "pbmc68k", 45, {"n_epochs_kl_warmup": 10, "n_latent": 14},
     "healthy"),
    ("json_pandas", "default_e24", "mouse_brain", 24, {}, "default 400-epoch warm-up, unfinished"),
    ("csv", "default_lat6_e45", "citeseq", 45, {"n_latent": 6}, "default warm-up, unfinished"),
    ("json_lists", "warm40_e80_nb", "pbmc68k", 80,
     {"n_epochs_kl_warmup": 40, "gene_likelihood": "nb"}, "healthy, nb"),
    ("csv", "kl4_e45", "mouse_brain", 45, {"max_kl_weight": 4.0, "n_epochs_kl_warmup": 0},
     "KL weight 4"),
    ("csv", "kl12_lat30_e24", "citeseq", 24,
     {"max_kl_weight": 12.0, "n_latent": 30, "n_epochs_kl_warmup": 0}, "KL weight 12"),
    ("json_pandas", "kl60_e45", "pbmc68k", 45, {"max_kl_weight": 60.0, "n_epochs_kl_warmup": 0},
     "collapse: KL weight 60"),
    ("csv", "kl250_lat4_e24", "mouse_brain", 24,
     {"max_kl_weight": 250.0, "n_latent": 4, "n_epochs_kl_warmup": 0}, "collapse: KL weight 250"),
    ("csv", "kl0.5_h256_l2_e45", "pbmc68k", 45,
     {"max_kl_weight": 0.5, "n_hidden": 256, "n_layers": 2, "n_epochs_kl_warmup": 0},
     "KL weight 0.5"),
    ("csv", "e7_lat48", "citeseq", 7, {"n_latent": 48, "n_epochs_kl_warmup": 0},
     "not converged: 7 epochs"),
    ("json_lists", "lr1e-4_e24", "mouse_brain", 24, {"lr": 1e-4, "n_epochs_kl_warmup": 0},
     "not converged: small lr"),
    ("csv", "lr3e-4_e130", "pbmc68k", 130, {"lr": 3e-4, "n_epochs_kl_warmup": 0},
     "long run, small lr"),
    ("csv", "lr0.1_e24", "pbmc68k", 24, {"lr": 0.1, "n_epochs_kl_warmup": 0}, "lr 0.1"),
    ("json_pandas", "lr0.8_e12", "mouse_brain", 12, {"lr": 0.8, "n_epochs_kl_warmup": 0},
     "diverged? lr 0.8"),
    ("csv", "lr5_e7", "citeseq", 7, {"lr": 5.0, "n_epochs_kl_warmup": 0}, "diverged? lr 5"),
    ("csv", "tiny150_big_e130", "pbmc68k", 130, _scvi_tiny(150),
     "overfitting: 150 cells, big net"),
    ("json_lists", "tiny60_big_e80", "citeseq", 80, _scvi_tiny(60), "overfitting: 60 cells"),
    ("csv", "tiny300_big_e80", "mouse_brain", 80, _scvi_tiny(300), "overfitting: 300 cells"),
    ("csv", "warm100_lat4_e45", "geuvadis", 45,
     {"n_epochs_kl_warmup": 100, "n_latent": 4, "batch_size": 16},
     "tiny bulk data, warm-up unfinished"),
    ("csv", "kl4_e130", "geuvadis", 130,
     {"max_kl_weight": 4.0, "n_epochs_kl_warmup": 0, "batch_size": 16}, "tiny bulk data, long"),
]

# source, style, name, dataset, N, settings, intent -- plain loops (``loop``: ten text
# styles, three runs each), Keras-style text and Lightning: train_loop.py / vae_torch.py
# keyword names.
_OTHERS = [
    ("loop", "reference", "nb_warm10_lat14", "citeseq", 45,
     {"n_epochs_kl_warmup": 10, "n_latent": 14}, "healthy"),
    ("loop", "reference", "nb_kl60", "pbmc68k", 24, {"max_kl_weight": 60.0},
     "collapse: KL weight 60"),
    ("loop", "reference", "gauss_e7", "mouse_brain", 7, {"decoder": "gaussian"},
     "not converged: 7 epochs"),
    ("loop", "bracket", "nb_dropout0.3_lat30", "pbmc68k", 45, {"dropout": 0.3, "n_latent": 30},
     "dropout 0.3"),
    ("loop", "bracket", "mse_kl12", "citeseq", 24, {"decoder": "mse", "max_kl_weight": 12.0},
     "KL weight 12, MSE"),
    ("loop", "bracket", "nb_lr0.8", "mouse_brain", 12, {"lr": 0.8}, "diverged? lr 0.8"),
    ("loop", "terse", "nb_h32_lat6", "mouse_brain", 45, {"n_hidden": 32, "n_latent": 6},
     "small network"),
    ("loop", "terse", "nb_tiny150_big", "pbmc68k", 130, _tiny(150, 30),
     "overfitting: 150 cells, big decoder"),
    ("loop", "terse", "gauss_mean_kl4", "citeseq", 24,
     {"decoder": "gaussian", "reduction": "mean", "max_kl_weight": 4.0}, "per-element mean"),
    ("loop", "kv_comma", "nb_lr1e-4", "pbmc68k", 24, {"lr": 1e-4}, "not converged: small lr"),
    ("loop", "kv_comma", "nb_kl250_lat48", "mouse_brain", 24,
     {"max_kl_weight": 250.0, "n_latent": 48}, "collapse: KL weight 250"),
    ("loop", "kv_comma", "nb_geuvadis_warm40_lat4", "geuvadis", 80,
     {"batch_size": 16, "n_latent": 4, "n_epochs_kl_warmup": 40}, "tiny bulk data"),
    ("loop", "tqdm", "nb_warm40_e80", "mouse_brain", 80, {"n_epochs_kl_warmup": 40}, "healthy"),
    ("loop", "tqdm", "nb_sgd_lr0.1", "citeseq", 12, {"optimizer": "sgd", "lr": 0.1},
     "diverged? SGD lr 0.1"),
    ("loop", "tqdm", "mse_mean_lat6", "pbmc68k", 45,
     {"decoder": "mse", "reduction": "mean", "n_latent": 6}, "per-element mean, MSE"),
    ("loop", "jsonl", "nb_kl30_lat14", "citeseq", 45, {"max_kl_weight": 30.0, "n_latent": 14},
     "collapse? KL weight 30"),
    ("loop", "jsonl", "nb_b256_e12", "pbmc68k", 12, {"batch_size": 256},
     "not converged? large batches"),
    ("loop", "jsonl", "nb_l3_dropout0.1", "mouse_brain", 80, {"n_layers": 3, "dropout": 0.1},
     "healthy, deep"),
    ("loop", "pytorch_example", "nb_lat6", "pbmc68k", 45, {"n_latent": 6}, "healthy, no KL"),
    ("loop", "pytorch_example", "nb_kl60", "citeseq", 24, {"max_kl_weight": 60.0},
     "collapse, no KL"),
    ("loop", "pytorch_example", "nb_lr1e-4_e12", "mouse_brain", 12, {"lr": 1e-4},
     "not converged, no KL"),
    ("loop", "per_step", "nb_lat30_warm10", "pbmc68k", 45,
     {"n_latent": 30, "n_epochs_kl_warmup": 10}, "healthy"),
    ("loop", "per_step", "nb_kl12_b64", "citeseq", 24, {"max_kl_weight": 12.0, "batch_size": 64},
     "KL weight 12"),
    ("loop", "per_step", "gauss_lr5", "mouse_brain", 12, {"decoder": "gaussian", "lr": 5.0},
     "diverged: lr 5"),
    ("loop", "dict", "nb_kl0.5_lat48", "mouse_brain", 45, {"max_kl_weight": 0.5, "n_latent": 48},
     "KL weight 0.5"),
    ("loop", "dict", "nb_geuvadis_kl30", "geuvadis", 45,
     {"batch_size": 16, "max_kl_weight": 30.0}, "tiny bulk data, KL weight 30"),
    ("loop", "dict", "nb_tiny60_big", "citeseq", 80, _tiny(60, 14),
     "overfitting: 60 cells, big decoder"),
    ("loop", "logging", "nb_warm100_e45", "pbmc68k", 45, {"n_epochs_kl_warmup": 100},
     "warm-up unfinished"),
    ("loop", "logging", "gauss_lr3e-4", "citeseq", 80, {"decoder": "gaussian", "lr": 3e-4},
     "healthy?"),
    ("loop", "logging", "nb_mean_kl4", "mouse_brain", 24,
     {"reduction": "mean", "max_kl_weight": 4.0}, "collapse? per-element mean"),
    ("keras", "keras_bar", "nb_kl4_lat14", "pbmc68k", 45, {"max_kl_weight": 4.0, "n_latent": 14},
     "KL weight 4"),
    ("keras", "keras_bar", "nb_e7", "citeseq", 7, {}, "not converged: 7 epochs"),
    ("keras", "keras_bar", "nb_kl60", "mouse_brain", 24, {"max_kl_weight": 60.0},
     "collapse: KL weight 60"),
    ("keras", "keras_v2", "nb_warm10_lat30", "mouse_brain", 45,
     {"n_epochs_kl_warmup": 10, "n_latent": 30}, "healthy"),
    ("keras", "keras_v2", "nb_tiny300_big", "pbmc68k", 130, _tiny(300, 30),
     "overfitting: 300 cells, big decoder"),
    ("keras", "keras_v2", "mse_lr1e-4", "citeseq", 24, {"decoder": "mse", "lr": 1e-4},
     "not converged: small lr"),
    ("lightning_csv", "csv_steps", "nb_warm10_lat6", "pbmc68k", 45,
     {"n_epochs_kl_warmup": 10, "n_latent": 6}, "healthy"),
    ("lightning_csv", "csv_steps", "nb_kl250", "citeseq", 24, {"max_kl_weight": 250.0},
     "collapse: KL weight 250"),
    ("lightning_csv", "csv_epoch", "nb_tiny60_big", "pbmc68k", 80, _tiny(60, 30),
     "overfitting: 60 cells, big decoder"),
    ("lightning_csv", "csv_epoch", "nb_lr5", "mouse_brain", 7, {"lr": 5.0}, "diverged: lr 5"),
    ("lightning_tensorboard", "tb_steps", "nb_kl12_lat48", "mouse_brain", 45,
     {"max_kl_weight": 12.0, "n_latent": 48}, "KL weight 12"),
    ("lightning_tensorboard", "tb_steps", "nb_e12_dropout0.3", "citeseq", 12, {"dropout": 0.3},
     "not converged? 12 epochs"),
    ("lightning_tensorboard", "tb_epoch", "nb_warm40_e80", "pbmc68k", 80,
     {"n_epochs_kl_warmup": 40}, "healthy"),
    ("lightning_tensorboard", "tb_epoch", "gauss_lr0.8", "citeseq", 24,
     {"decoder": "gaussian", "lr": 0.8}, "diverged? lr 0.8"),
]


def heldout3_plan() -> list[RunSpec]:
    """Every run of the third held-out plan, in generation order (``heldout3_<source>_...``)."""
    return held_out_runs(PREFIX, _SCVI, _OTHERS)
