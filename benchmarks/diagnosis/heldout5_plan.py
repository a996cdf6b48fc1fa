"""The fifth held-out runs of the diagnosis benchmark: a test of the unsettled-validation rule.

After held-out 4 was scored, one check was added to the not-converged rule: a
validation loss that swings over the last fifth of the run by more than a quarter of
the training loss's gain is not converged (``VAL_UNSETTLED_SWING``). Its threshold was
chosen by reading all 297 earlier runs, held-out 3 and 4 included, so those corpora
are tuning sets now. These 64 runs test the rules as they stand on runs nobody has
seen: the same sources, formats and datasets in the same proportions as the third and
fourth plans, with settings values no earlier plan uses wherever possible (KL weights
0.3, 2.5, 12, 35, 150, 600; 9, 18, 38, 65 and 85 epochs; ``n_latent`` 11, 13, 22, 28,
56; learning rates 1.5e-4, 7e-4, 0.02, 0.08, 2.5; dropout 0.25 and 0.35; warm-ups of 12,
35, 70 and 200 epochs; hidden layers of 40 and 320 units; batch sizes 40, 80 and 384;
tiny pools of 100, 220 and 420 cells with big networks). Every run id starts with
``heldout5_``, so every seed is new.

The settings were fixed and committed before any of these runs was trained; no run is
dropped or re-tuned after its truth is seen; the scoring is ``score.py``'s, unchanged.
Generated once, scored once:

    .venv-bench/bin/python benchmarks/diagnosis/generate.py --plan heldout5
    make bench-diagnosis-heldout5
"""

from __future__ import annotations

from corpus_plan import held_out_runs, scvi_tiny_settings, tiny_settings
from runs import RunSpec

__all__ = ["heldout5_plan", "PREFIX"]

#: Every run id of this plan starts with this (new ids, hence new seeds).
PREFIX = "heldout5_"


def _tiny(n_cells: int, n_latent: int) -> dict:
    return tiny_settings(n_cells, n_latent, batch_size=40, kl_weight=0.3, decoder_hidden=640,
                         decoder_layers=2)


def _scvi_tiny(n_cells: int) -> dict:
    """Pools of 100, 220 and 420 cells leave 90, 198 and 378 training cells: no last batch
    of one cell at batch size 40 (scvi-tools' batch norm refuses one)."""
    return scvi_tiny_settings(n_cells, n_hidden=320, n_layers=2, batch_size=40, kl_weight=0.3)


# style, name, dataset, N, settings, intent -- scvi-tools SCVI (keyword names of SCVI
# and plan_kwargs; n_pool_cells subsamples the pool; scvi's default warm-up is 400
# epochs); styles are history_ exports.
_SCVI = [
    ("csv", "warm12_lat22_e65", "pbmc68k", 65, {"n_epochs_kl_warmup": 12, "n_latent": 22},
     "healthy"),
    ("json_pandas", "default_e38", "citeseq", 38, {}, "default 400-epoch warm-up, unfinished"),
    ("csv", "default_lat13_e38", "mouse_brain", 38, {"n_latent": 13},
     "default warm-up, unfinished"),
    ("json_lists", "warm35_e85_nb", "mouse_brain", 85,
     {"n_epochs_kl_warmup": 35, "gene_likelihood": "nb"}, "healthy, nb"),
    ("csv", "kl12_e65", "pbmc68k", 65, {"max_kl_weight": 12.0, "n_epochs_kl_warmup": 0},
     "KL weight 12"),
    ("csv", "kl35_lat28_e38", "mouse_brain", 38,
     {"max_kl_weight": 35.0, "n_latent": 28, "n_epochs_kl_warmup": 0}, "KL weight 35"),
    ("json_pandas", "kl150_e38", "citeseq", 38, {"max_kl_weight": 150.0, "n_epochs_kl_warmup": 0},
     "collapse: KL weight 150"),
    ("csv", "kl600_lat11_e18", "pbmc68k", 18,
     {"max_kl_weight": 600.0, "n_latent": 11, "n_epochs_kl_warmup": 0},
     "collapse: KL weight 600"),
    ("csv", "kl2.5_h320_e65", "citeseq", 65,
     {"max_kl_weight": 2.5, "n_hidden": 320, "n_epochs_kl_warmup": 0}, "KL weight 2.5"),
    ("csv", "e9_lat56", "mouse_brain", 9, {"n_latent": 56, "n_epochs_kl_warmup": 0},
     "not converged: 9 epochs"),
    ("json_lists", "lr1.5e-4_e38", "citeseq", 38, {"lr": 1.5e-4, "n_epochs_kl_warmup": 0},
     "not converged: small lr"),
    ("csv", "lr7e-4_e85", "mouse_brain", 85, {"lr": 7e-4, "n_epochs_kl_warmup": 0},
     "long run, smaller lr"),
    ("csv", "lr0.02_e38", "pbmc68k", 38, {"lr": 0.02, "n_epochs_kl_warmup": 0}, "lr 0.02"),
    ("json_pandas", "lr0.08_e18", "citeseq", 18, {"lr": 0.08, "n_epochs_kl_warmup": 0},
     "lr 0.08"),
    ("csv", "lr2.5_e9", "pbmc68k", 9, {"lr": 2.5, "n_epochs_kl_warmup": 0}, "diverged? lr 2.5"),
    ("csv", "tiny220_big_e85", "mouse_brain", 85, _scvi_tiny(220),
     "overfitting: 220 cells, big net"),
    ("json_lists", "tiny100_big_e85", "pbmc68k", 85, _scvi_tiny(100), "overfitting: 100 cells"),
    ("csv", "tiny420_big_e65", "pbmc68k", 65, _scvi_tiny(420), "overfitting? 420 cells"),
    ("csv", "warm200_lat11_e65", "geuvadis", 65,
     {"n_epochs_kl_warmup": 200, "n_latent": 11, "batch_size": 16},
     "tiny bulk data, warm-up unfinished"),
    ("csv", "kl2.5_e85", "geuvadis", 85,
     {"max_kl_weight": 2.5, "n_epochs_kl_warmup": 0, "batch_size": 16}, "tiny bulk data, long"),
]

# source, style, name, dataset, N, settings, intent -- plain loops (``loop``: ten text
# styles, three runs each), Keras-style text and Lightning: train_loop.py / vae_torch.py
# keyword names.
_OTHERS = [
    ("loop", "reference", "nb_warm12_lat22", "pbmc68k", 65,
     {"n_epochs_kl_warmup": 12, "n_latent": 22}, "healthy"),
    ("loop", "reference", "nb_kl150", "mouse_brain", 38, {"max_kl_weight": 150.0},
     "collapse: KL weight 150"),
    ("loop", "reference", "gauss_e9", "citeseq", 9, {"decoder": "gaussian"},
     "not converged: 9 epochs"),
    ("loop", "bracket", "nb_dropout0.25_lat28", "mouse_brain", 65,
     {"dropout": 0.25, "n_latent": 28}, "dropout 0.25"),
    ("loop", "bracket", "mse_kl35", "pbmc68k", 38, {"decoder": "mse", "max_kl_weight": 35.0},
     "KL weight 35, MSE"),
    ("loop", "bracket", "nb_lr2.5", "citeseq", 18, {"lr": 2.5}, "diverged? lr 2.5"),
    ("loop", "terse", "nb_h40_lat11", "citeseq", 65, {"n_hidden": 40, "n_latent": 11},
     "small network"),
    ("loop", "terse", "nb_tiny220_big", "mouse_brain", 85, _tiny(220, 28),
     "overfitting: 220 cells, big decoder"),
    ("loop", "terse", "gauss_mean_kl12", "pbmc68k", 38,
     {"decoder": "gaussian", "reduction": "mean", "max_kl_weight": 12.0}, "per-element mean"),
    ("loop", "kv_comma", "nb_lr1.5e-4", "citeseq", 38, {"lr": 1.5e-4},
     "not converged: small lr"),
    ("loop", "kv_comma", "nb_kl600_lat56", "pbmc68k", 38,
     {"max_kl_weight": 600.0, "n_latent": 56}, "collapse: KL weight 600"),
    ("loop", "kv_comma", "nb_geuvadis_warm35_lat11", "geuvadis", 85,
     {"batch_size": 16, "n_latent": 11, "n_epochs_kl_warmup": 35}, "tiny bulk data"),
    ("loop", "tqdm", "nb_warm35_e85", "citeseq", 85, {"n_epochs_kl_warmup": 35}, "healthy"),
    ("loop", "tqdm", "nb_sgd_lr0.02", "mouse_brain", 18, {"optimizer": "sgd", "lr": 0.02},
     "diverged? SGD lr 0.02"),
    ("loop", "tqdm", "mse_mean_lat13", "citeseq", 65,
     {"decoder": "mse", "reduction": "mean", "n_latent": 13}, "per-element mean, MSE"),
    ("loop", "jsonl", "nb_kl35_lat22", "mouse_brain", 65, {"max_kl_weight": 35.0, "n_latent": 22},
     "collapse? KL weight 35"),
    ("loop", "jsonl", "nb_b384_e18", "mouse_brain", 18, {"batch_size": 384},
     "not converged? large batches"),
    ("loop", "jsonl", "nb_h320_dropout0.35", "pbmc68k", 85, {"n_hidden": 320, "dropout": 0.35},
     "heavy dropout"),
    ("loop", "pytorch_example", "nb_lat13", "mouse_brain", 65, {"n_latent": 13}, "healthy, no KL"),
    ("loop", "pytorch_example", "nb_kl150", "pbmc68k", 38, {"max_kl_weight": 150.0},
     "collapse, no KL"),
    ("loop", "pytorch_example", "nb_lr1.5e-4_e18", "citeseq", 18, {"lr": 1.5e-4},
     "not converged, no KL"),
    ("loop", "per_step", "nb_lat28_warm12", "mouse_brain", 65,
     {"n_latent": 28, "n_epochs_kl_warmup": 12}, "healthy"),
    ("loop", "per_step", "nb_kl12_b80", "pbmc68k", 38, {"max_kl_weight": 12.0, "batch_size": 80},
     "KL weight 12"),
    ("loop", "per_step", "gauss_lr2.5", "citeseq", 18, {"decoder": "gaussian", "lr": 2.5},
     "diverged: lr 2.5"),
    ("loop", "dict", "nb_kl2.5_lat56", "citeseq", 65, {"max_kl_weight": 2.5, "n_latent": 56},
     "KL weight 2.5"),
    ("loop", "dict", "nb_geuvadis_kl12", "geuvadis", 65,
     {"batch_size": 16, "max_kl_weight": 12.0}, "tiny bulk data, KL weight 12"),
    ("loop", "dict", "nb_tiny100_big", "pbmc68k", 85, _tiny(100, 22),
     "overfitting: 100 cells, big decoder"),
    ("loop", "logging", "nb_warm200_e65", "mouse_brain", 65, {"n_epochs_kl_warmup": 200},
     "warm-up unfinished"),
    ("loop", "logging", "gauss_lr7e-4", "pbmc68k", 85, {"decoder": "gaussian", "lr": 7e-4},
     "healthy?"),
    ("loop", "logging", "nb_mean_kl12", "citeseq", 38,
     {"reduction": "mean", "max_kl_weight": 12.0}, "collapse? per-element mean"),
    ("keras", "keras_bar", "nb_kl12_lat22", "mouse_brain", 65,
     {"max_kl_weight": 12.0, "n_latent": 22}, "KL weight 12"),
    ("keras", "keras_bar", "nb_e9", "pbmc68k", 9, {}, "not converged: 9 epochs"),
    ("keras", "keras_bar", "nb_kl150", "citeseq", 38, {"max_kl_weight": 150.0},
     "collapse: KL weight 150"),
    ("keras", "keras_v2", "nb_warm12_lat28", "citeseq", 65,
     {"n_epochs_kl_warmup": 12, "n_latent": 28}, "healthy"),
    ("keras", "keras_v2", "nb_tiny420_big", "mouse_brain", 85, _tiny(420, 28),
     "overfitting: 420 cells, big decoder"),
    ("keras", "keras_v2", "mse_lr1.5e-4", "pbmc68k", 38, {"decoder": "mse", "lr": 1.5e-4},
     "not converged: small lr"),
    ("lightning_csv", "csv_steps", "nb_warm12_lat13", "mouse_brain", 65,
     {"n_epochs_kl_warmup": 12, "n_latent": 13}, "healthy"),
    ("lightning_csv", "csv_steps", "nb_kl600", "pbmc68k", 38, {"max_kl_weight": 600.0},
     "collapse: KL weight 600"),
    ("lightning_csv", "csv_epoch", "nb_tiny100_big", "citeseq", 85, _tiny(100, 28),
     "overfitting: 100 cells, big decoder"),
    ("lightning_csv", "csv_epoch", "nb_lr2.5", "pbmc68k", 9, {"lr": 2.5}, "diverged: lr 2.5"),
    ("lightning_tensorboard", "tb_steps", "nb_kl35_lat56", "citeseq", 65,
     {"max_kl_weight": 35.0, "n_latent": 56}, "KL weight 35"),
    ("lightning_tensorboard", "tb_steps", "nb_e18_dropout0.35", "mouse_brain", 18,
     {"dropout": 0.35}, "not converged? 18 epochs"),
    ("lightning_tensorboard", "tb_epoch", "nb_warm35_e85", "mouse_brain", 85,
     {"n_epochs_kl_warmup": 35}, "healthy"),
    ("lightning_tensorboard", "tb_epoch", "gauss_lr0.08", "pbmc68k", 38,
     {"decoder": "gaussian", "lr": 0.08}, "diverged? lr 0.08"),
]


def heldout5_plan() -> list[RunSpec]:
    """Every run of the fifth held-out plan, in generation order (``heldout5_<source>_...``)."""
    return held_out_runs(PREFIX, _SCVI, _OTHERS)
