"""The fourth held-out runs of the diagnosis benchmark: a second test of the final rules.

The third held-out corpus was scored once with the rules of c3ad921, and those rules
have not changed since. These 64 runs test the same rules again on runs nobody has
seen: the same sources, formats and datasets in the same proportions as the third plan,
with settings values no earlier plan uses wherever possible (KL weights 0.2, 1.5, 6,
20, 80, 400; 8, 15, 30, 55 and 100 epochs; ``n_latent`` 7, 9, 18, 36, 64; learning
rates 2e-4, 5e-4, 0.05, 0.15, 1.5; dropout 0.15 and 0.4; warm-ups of 8, 20, 50 and 150
epochs; hidden layers of 48 and 192 units; batch sizes 48, 96 and 512; tiny pools of 70,
180 and 350 cells with big networks). Every run id starts with ``heldout4_``, so every
seed is new.

The settings were fixed and committed before any of these runs was trained; no run is
dropped or re-tuned after its truth is seen; the scoring is ``score.py``'s, unchanged.
Generated once, scored once:

    .venv-bench/bin/python benchmarks/diagnosis/generate.py --plan heldout4
    make bench-diagnosis-heldout4
"""

from __future__ import annotations

from corpus_plan import held_out_runs, scvi_tiny_settings, tiny_settings
from runs import RunSpec

__all__ = ["heldout4_plan", "PREFIX"]

#: Every run id of this plan starts with this (new ids, hence new seeds).
PREFIX = "heldout4_"


def _tiny(n_cells: int, n_latent: int) -> dict:
    return tiny_settings(n_cells, n_latent, batch_size=48, kl_weight=0.2, decoder_hidden=768,
                         decoder_layers=2)


def _scvi_tiny(n_cells: int) -> dict:
    """Pools of 70, 180 and 350 cells leave 63, 162 and 315 training cells: no last batch
    of one cell at batch size 48 (scvi-tools' batch norm refuses one)."""
    return scvi_tiny_settings(n_cells, n_hidden=384, n_layers=2, batch_size=48, kl_weight=0.2)


# style, name, dataset, N, settings, intent -- scvi-tools SCVI (keyword names of SCVI
# and plan_kwargs; n_pool_cells subsamples the pool; scvi's default warm-up is 400
# epochs); styles are history_ exports.
_SCVI = [
    ("csv", "warm8_lat18_e55", "pbmc68k", 55, {"n_epochs_kl_warmup": 8, "n_latent": 18},
     "healthy"),
    ("json_pandas", "default_e30", "citeseq", 30, {}, "default 400-epoch warm-up, unfinished"),
    ("csv", "default_lat9_e55", "mouse_brain", 55, {"n_latent": 9},
     "default warm-up, unfinished"),
    ("json_lists", "warm50_e100_nb", "mouse_brain", 100,
     {"n_epochs_kl_warmup": 50, "gene_likelihood": "nb"}, "healthy, nb"),
    ("csv", "kl6_e55", "pbmc68k", 55, {"max_kl_weight": 6.0, "n_epochs_kl_warmup": 0},
     "KL weight 6"),
    ("csv", "kl20_lat36_e30", "mouse_brain", 30,
     {"max_kl_weight": 20.0, "n_latent": 36, "n_epochs_kl_warmup": 0}, "KL weight 20"),
    ("json_pandas", "kl80_e30", "citeseq", 30, {"max_kl_weight": 80.0, "n_epochs_kl_warmup": 0},
     "collapse: KL weight 80"),
    ("csv", "kl400_lat7_e15", "pbmc68k", 15,
     {"max_kl_weight": 400.0, "n_latent": 7, "n_epochs_kl_warmup": 0}, "collapse: KL weight 400"),
    ("csv", "kl1.5_h192_e55", "citeseq", 55,
     {"max_kl_weight": 1.5, "n_hidden": 192, "n_epochs_kl_warmup": 0}, "KL weight 1.5"),
    ("csv", "e8_lat64", "mouse_brain", 8, {"n_latent": 64, "n_epochs_kl_warmup": 0},
     "not converged: 8 epochs"),
    ("json_lists", "lr2e-4_e30", "citeseq", 30, {"lr": 2e-4, "n_epochs_kl_warmup": 0},
     "not converged: small lr"),
    ("csv", "lr5e-4_e100", "mouse_brain", 100, {"lr": 5e-4, "n_epochs_kl_warmup": 0},
     "long run, smaller lr"),
    ("csv", "lr0.05_e30", "pbmc68k", 30, {"lr": 0.05, "n_epochs_kl_warmup": 0}, "lr 0.05"),
    ("json_pandas", "lr0.15_e15", "citeseq", 15, {"lr": 0.15, "n_epochs_kl_warmup": 0},
     "lr 0.15"),
    ("csv", "lr1.5_e8", "pbmc68k", 8, {"lr": 1.5, "n_epochs_kl_warmup": 0}, "diverged? lr 1.5"),
    ("csv", "tiny180_big_e100", "mouse_brain", 100, _scvi_tiny(180),
     "overfitting: 180 cells, big net"),
    ("json_lists", "tiny70_big_e100", "pbmc68k", 100, _scvi_tiny(70), "overfitting: 70 cells"),
    ("csv", "tiny350_big_e55", "pbmc68k", 55, _scvi_tiny(350), "overfitting? 350 cells"),
    ("csv", "warm150_lat7_e55", "geuvadis", 55,
     {"n_epochs_kl_warmup": 150, "n_latent": 7, "batch_size": 16},
     "tiny bulk data, warm-up unfinished"),
    ("csv", "kl1.5_e100", "geuvadis", 100,
     {"max_kl_weight": 1.5, "n_epochs_kl_warmup": 0, "batch_size": 16}, "tiny bulk data, long"),
]

# source, style, name, dataset, N, settings, intent -- plain loops (``loop``: ten text
# styles, three runs each), Keras-style text and Lightning: train_loop.py / vae_torch.py
# keyword names.
_OTHERS = [
    ("loop", "reference", "nb_warm8_lat18", "pbmc68k", 55,
     {"n_epochs_kl_warmup": 8, "n_latent": 18}, "healthy"),
    ("loop", "reference", "nb_kl80", "mouse_brain", 30, {"max_kl_weight": 80.0},
     "collapse: KL weight 80"),
    ("loop", "reference", "gauss_e8", "citeseq", 8, {"decoder": "gaussian"},
     "not converged: 8 epochs"),
    ("loop", "bracket", "nb_dropout0.15_lat36", "mouse_brain", 55,
     {"dropout": 0.15, "n_latent": 36}, "dropout 0.15"),
    ("loop", "bracket", "mse_kl20", "pbmc68k", 30, {"decoder": "mse", "max_kl_weight": 20.0},
     "KL weight 20, MSE"),
    ("loop", "bracket", "nb_lr1.5", "citeseq", 15, {"lr": 1.5}, "diverged? lr 1.5"),
    ("loop", "terse", "nb_h48_lat9", "citeseq", 55, {"n_hidden": 48, "n_latent": 9},
     "small network"),
    ("loop", "terse", "nb_tiny180_big", "mouse_brain", 100, _tiny(180, 36),
     "overfitting: 180 cells, big decoder"),
    ("loop", "terse", "gauss_mean_kl6", "pbmc68k", 30,
     {"decoder": "gaussian", "reduction": "mean", "max_kl_weight": 6.0}, "per-element mean"),
    ("loop", "kv_comma", "nb_lr2e-4", "citeseq", 30, {"lr": 2e-4}, "not converged: small lr"),
    ("loop", "kv_comma", "nb_kl400_lat64", "pbmc68k", 30,
     {"max_kl_weight": 400.0, "n_latent": 64}, "collapse: KL weight 400"),
    ("loop", "kv_comma", "nb_geuvadis_warm50_lat7", "geuvadis", 100,
     {"batch_size": 16, "n_latent": 7, "n_epochs_kl_warmup": 50}, "tiny bulk data"),
    ("loop", "tqdm", "nb_warm50_e100", "citeseq", 100, {"n_epochs_kl_warmup": 50}, "healthy"),
    ("loop", "tqdm", "nb_sgd_lr0.05", "mouse_brain", 15, {"optimizer": "sgd", "lr": 0.05},
     "diverged? SGD lr 0.05"),
    ("loop", "tqdm", "mse_mean_lat9", "citeseq", 55,
     {"decoder": "mse", "reduction": "mean", "n_latent": 9}, "per-element mean, MSE"),
    ("loop", "jsonl", "nb_kl20_lat18", "mouse_brain", 55, {"max_kl_weight": 20.0, "n_latent": 18},
     "collapse? KL weight 20"),
    ("loop", "jsonl", "nb_b512_e15", "mouse_brain", 15, {"batch_size": 512},
     "not converged? large batches"),
    ("loop", "jsonl", "nb_h192_dropout0.4", "pbmc68k", 100, {"n_hidden": 192, "dropout": 0.4},
     "heavy dropout"),
    ("loop", "pytorch_example", "nb_lat9", "mouse_brain", 55, {"n_latent": 9}, "healthy, no KL"),
    ("loop", "pytorch_example", "nb_kl80", "pbmc68k", 30, {"max_kl_weight": 80.0},
     "collapse, no KL"),
    ("loop", "pytorch_example", "nb_lr2e-4_e15", "citeseq", 15, {"lr": 2e-4},
     "not converged, no KL"),
    ("loop", "per_step", "nb_lat36_warm8", "mouse_brain", 55,
     {"n_latent": 36, "n_epochs_kl_warmup": 8}, "healthy"),
    ("loop", "per_step", "nb_kl6_b96", "pbmc68k", 30, {"max_kl_weight": 6.0, "batch_size": 96},
     "KL weight 6"),
    ("loop", "per_step", "gauss_lr1.5", "citeseq", 15, {"decoder": "gaussian", "lr": 1.5},
     "diverged: lr 1.5"),
    ("loop", "dict", "nb_kl1.5_lat64", "citeseq", 55, {"max_kl_weight": 1.5, "n_latent": 64},
     "KL weight 1.5"),
    ("loop", "dict", "nb_geuvadis_kl20", "geuvadis", 55,
     {"batch_size": 16, "max_kl_weight": 20.0}, "tiny bulk data, KL weight 20"),
    ("loop", "dict", "nb_tiny70_big", "pbmc68k", 100, _tiny(70, 18),
     "overfitting: 70 cells, big decoder"),
    ("loop", "logging", "nb_warm150_e55", "mouse_brain", 55, {"n_epochs_kl_warmup": 150},
     "warm-up unfinished"),
    ("loop", "logging", "gauss_lr5e-4", "pbmc68k", 100, {"decoder": "gaussian", "lr": 5e-4},
     "healthy?"),
    ("loop", "logging", "nb_mean_kl6", "citeseq", 30,
     {"reduction": "mean", "max_kl_weight": 6.0}, "collapse? per-element mean"),
    ("keras", "keras_bar", "nb_kl6_lat18", "mouse_brain", 55, {"max_kl_weight": 6.0, "n_latent": 18},
     "KL weight 6"),
    ("keras", "keras_bar", "nb_e8", "pbmc68k", 8, {}, "not converged: 8 epochs"),
    ("keras", "keras_bar", "nb_kl80", "citeseq", 30, {"max_kl_weight": 80.0},
     "collapse: KL weight 80"),
    ("keras", "keras_v2", "nb_warm8_lat36", "citeseq", 55,
     {"n_epochs_kl_warmup": 8, "n_latent": 36}, "healthy"),
    ("keras", "keras_v2", "nb_tiny350_big", "mouse_brain", 100, _tiny(350, 36),
     "overfitting: 350 cells, big decoder"),
    ("keras", "keras_v2", "mse_lr2e-4", "pbmc68k", 30, {"decoder": "mse", "lr": 2e-4},
     "not converged: small lr"),
    ("lightning_csv", "csv_steps", "nb_warm8_lat9", "mouse_brain", 55,
     {"n_epochs_kl_warmup": 8, "n_latent": 9}, "healthy"),
    ("lightning_csv", "csv_steps", "nb_kl400", "pbmc68k", 30, {"max_kl_weight": 400.0},
     "collapse: KL weight 400"),
    ("lightning_csv", "csv_epoch", "nb_tiny70_big", "citeseq", 100, _tiny(70, 36),
     "overfitting: 70 cells, big decoder"),
    ("lightning_csv", "csv_epoch", "nb_lr1.5", "pbmc68k", 8, {"lr": 1.5}, "diverged: lr 1.5"),
    ("lightning_tensorboard", "tb_steps", "nb_kl20_lat64", "citeseq", 55,
     {"max_kl_weight": 20.0, "n_latent": 64}, "KL weight 20"),
    ("lightning_tensorboard", "tb_steps", "nb_e15_dropout0.4", "mouse_brain", 15,
     {"dropout": 0.4}, "not converged? 15 epochs"),
    ("lightning_tensorboard", "tb_epoch", "nb_warm50_e100", "mouse_brain", 100,
     {"n_epochs_kl_warmup": 50}, "healthy"),
    ("lightning_tensorboard", "tb_epoch", "gauss_lr0.15", "pbmc68k", 30,
     {"decoder": "gaussian", "lr": 0.15}, "diverged? lr 0.15"),
]


def heldout4_plan() -> list[RunSpec]:
    """Every run of the fourth held-out plan, in generation order (``heldout4_<source>_...``)."""
    return held_out_runs(PREFIX, _SCVI, _OTHERS)
