"""The second held-out runs of the diagnosis benchmark: a fresh, untouched test set.

The diagnosis rules were revised on ``corpus_plan.py``'s corpus and then on
``heldout_plan.py``'s, so neither tests them honestly any more. These runs are a new
check: the same sources, formats and datasets in a different mix, with settings
values used by neither earlier plan wherever possible (KL weights 2, 8, 40, 150; 6, 9,
18, 35, 70 and 110 epochs; ``n_latent`` 3, 12, 20, 40; learning rates 5e-5, 0.2, 0.5,
2, and the default 1e-3 with dropout 0.2 or 0.5; warm-ups of 5, 25 and 60 epochs, some
unfinished at N; scvi-tools' default 400-epoch warm-up in 18- and 35-epoch runs;
tiny pools of 80, 110 and 250 cells with big networks (768 hidden units, decoders of
1024); KL weight 0.02 on them; zinb and nb). Every run id starts with ``heldout2_``,
so every seed is new.

The settings were fixed before any of these runs was trained; no run is dropped or
re-tuned after its truth is seen. ``intent`` is a design note, never the truth
(``truth.py`` measures it). Generated once, and to be scored once, after the rules
are final (``make bench-diagnosis-heldout2``):

    .venv-bench/bin/python benchmarks/diagnosis/generate.py --plan heldout2
"""

from __future__ import annotations

from corpus_plan import held_out_runs, scvi_tiny_settings, tiny_settings
from runs import RunSpec

__all__ = ["heldout2_plan", "PREFIX"]

#: Every run id of this plan starts with this (new ids, hence new seeds).
PREFIX = "heldout2_"

def _tiny(n_cells: int, n_latent: int) -> dict:
    return tiny_settings(n_cells, n_latent, batch_size=32, kl_weight=0.02, decoder_hidden=1024,
                         decoder_layers=2)


def _scvi_tiny(n_cells: int) -> dict:
    return scvi_tiny_settings(n_cells, n_hidden=768, n_layers=2, batch_size=32, kl_weight=0.02)


# style, name, dataset, N, settings, intent -- scvi-tools SCVI (keyword names of SCVI
# and plan_kwargs; n_pool_cells subsamples the pool; scvi's default warm-up is 400
# epochs); styles are history_ exports.
_SCVI = [
    ("csv", "warm25_lat12_e70", "pbmc68k", 70, {"n_epochs_kl_warmup": 25, "n_latent": 12},
     "healthy"),
    ("json_pandas", "default_e35", "pbmc68k", 35, {}, "default 400-epoch warm-up, unfinished"),
    ("csv", "default_lat20_e18", "mouse_brain", 18, {"n_latent": 20},
     "default warm-up, short"),
    ("json_lists", "default_nb_e35", "citeseq", 35, {"gene_likelihood": "nb"},
     "default warm-up, unfinished, nb"),
    ("csv", "kl8_e35", "citeseq", 35, {"max_kl_weight": 8.0, "n_epochs_kl_warmup": 0},
     "KL weight 8: collapse?"),
    ("csv", "kl40_lat40_e35", "mouse_brain", 35,
     {"max_kl_weight": 40.0, "n_latent": 40, "n_epochs_kl_warmup": 0}, "collapse: KL weight 40"),
    ("json_pandas", "kl150_e18", "pbmc68k", 18, {"max_kl_weight": 150.0, "n_epochs_kl_warmup": 0},
     "collapse: KL weight 150"),
    ("csv", "kl2_warm5_e70_nb", "pbmc68k", 70,
     {"max_kl_weight": 2.0, "n_epochs_kl_warmup": 5, "gene_likelihood": "nb"}, "KL weight 2"),
    ("csv", "e6_lat3", "mouse_brain", 6, {"n_latent": 3, "n_epochs_kl_warmup": 0},
     "not converged: 6 epochs"),
    ("json_lists", "lr5e-5_e35", "pbmc68k", 35, {"lr": 5e-5, "n_epochs_kl_warmup": 0},
     "not converged: tiny lr"),
    ("csv", "lr0.5_e9", "citeseq", 9, {"lr": 0.5, "n_epochs_kl_warmup": 0}, "diverged? lr 0.5"),
    ("json_lists", "lr0.2_e18", "mouse_brain", 18, {"lr": 0.2, "n_epochs_kl_warmup": 0},
     "diverged? lr 0.2"),
    ("csv", "tiny110_big_e110", "pbmc68k", 110, _scvi_tiny(110), "overfitting: 110 cells, big net"),
    ("json_pandas", "tiny80_big_e70", "citeseq", 70, _scvi_tiny(80),
     "overfitting: 80 cells, big net"),
    ("csv", "tiny250_big_e110", "mouse_brain", 110, _scvi_tiny(250),
     "overfitting: 250 cells, big net"),
    ("csv", "warm60_lat3_e35", "geuvadis", 35,
     {"n_epochs_kl_warmup": 60, "n_latent": 3, "batch_size": 16},
     "tiny bulk data, warm-up unfinished"),
]

# source, style, name, dataset, N, settings, intent -- plain loops (``loop``: ten text
# styles, two runs each), Keras-style text and Lightning: train_loop.py / vae_torch.py
# keyword names.
_OTHERS = [
    ("loop", "reference", "nb_warm25_lat12", "pbmc68k", 70,
     {"n_epochs_kl_warmup": 25, "n_latent": 12}, "healthy"),
    ("loop", "reference", "nb_kl40", "mouse_brain", 18, {"max_kl_weight": 40.0},
     "collapse: KL weight 40"),
    ("loop", "bracket", "gauss_dropout0.2_warm5", "citeseq", 35,
     {"decoder": "gaussian", "dropout": 0.2, "n_epochs_kl_warmup": 5}, "healthy"),
    ("loop", "bracket", "nb_e6", "mouse_brain", 6, {}, "not converged: 6 epochs"),
    ("loop", "terse", "nb_lr2", "citeseq", 9, {"lr": 2.0}, "diverged: lr 2"),
    ("loop", "terse", "mse_lat20_warm60", "pbmc68k", 35,
     {"decoder": "mse", "n_latent": 20, "n_epochs_kl_warmup": 60}, "warm-up unfinished"),
    ("loop", "kv_comma", "nb_tiny80_big", "citeseq", 110, _tiny(80, 20),
     "overfitting: 80 cells, big decoder"),
    ("loop", "kv_comma", "nb_geuvadis_kl8_lat3", "geuvadis", 35,
     {"max_kl_weight": 8.0, "n_latent": 3, "batch_size": 16}, "tiny bulk data, KL weight 8"),
    ("loop", "tqdm", "nb_dropout0.5_lat40", "pbmc68k", 35, {"dropout": 0.5, "n_latent": 40},
     "heavy dropout, wide latent"),
    ("loop", "tqdm", "gauss_lr5e-5", "mouse_brain", 18, {"decoder": "gaussian", "lr": 5e-5},
     "not converged: tiny lr"),
    ("loop", "jsonl", "sgd_lr0.2", "pbmc68k", 9, {"optimizer": "sgd", "lr": 0.2},
     "diverged: SGD on a summed loss"),
    ("loop", "jsonl", "nb_warm60_e70", "citeseq", 70, {"n_epochs_kl_warmup": 60}, "healthy?"),
    ("loop", "pytorch_example", "nb_kl2_lat20", "mouse_brain", 35,
     {"max_kl_weight": 2.0, "n_latent": 20}, "KL weight 2"),
    ("loop", "pytorch_example", "nb_tiny110_big", "pbmc68k", 110, _tiny(110, 40),
     "overfitting: 110 cells, big decoder"),
    ("loop", "per_step", "nb_mean_lat12", "citeseq", 18, {"reduction": "mean", "n_latent": 12},
     "collapse: per-element mean"),
    ("loop", "per_step", "nb_warm5_h64", "mouse_brain", 70,
     {"n_epochs_kl_warmup": 5, "n_hidden": 64}, "healthy"),
    ("loop", "dict", "gauss_lr0.5", "pbmc68k", 18, {"decoder": "gaussian", "lr": 0.5},
     "diverged? lr 0.5"),
    ("loop", "dict", "nb_kl150", "citeseq", 35, {"max_kl_weight": 150.0},
     "collapse: KL weight 150"),
    ("loop", "logging", "nb_geuvadis_lat12_warm25", "geuvadis", 110,
     {"batch_size": 16, "n_latent": 12, "n_epochs_kl_warmup": 25}, "tiny bulk data, long"),
    ("loop", "logging", "mse_mean_kl2", "mouse_brain", 9,
     {"decoder": "mse", "reduction": "mean", "max_kl_weight": 2.0}, "collapse?"),
    ("keras", "keras_bar", "nb_lat3_warm25", "citeseq", 70,
     {"n_latent": 3, "n_epochs_kl_warmup": 25}, "healthy"),
    ("keras", "keras_bar", "nb_lr5e-5", "pbmc68k", 35, {"lr": 5e-5}, "not converged: tiny lr"),
    ("keras", "keras_v2", "nb_tiny250_big", "mouse_brain", 110, _tiny(250, 20),
     "overfitting: 250 cells, big decoder"),
    ("keras", "keras_v2", "gauss_kl8", "pbmc68k", 18, {"decoder": "gaussian", "max_kl_weight": 8.0},
     "KL weight 8"),
    ("lightning_csv", "csv_steps", "nb_warm25_lat20", "mouse_brain", 35,
     {"n_epochs_kl_warmup": 25, "n_latent": 20}, "healthy"),
    ("lightning_csv", "csv_steps", "nb_lr0.2", "citeseq", 9, {"lr": 0.2}, "diverged? lr 0.2"),
    ("lightning_csv", "csv_epoch", "nb_tiny110_big", "citeseq", 70, _tiny(110, 40),
     "overfitting: 110 cells, big decoder"),
    ("lightning_csv", "csv_epoch", "nb_e6_dropout0.2", "pbmc68k", 6, {"dropout": 0.2},
     "not converged: 6 epochs"),
    ("lightning_tensorboard", "tb_steps", "nb_kl40_lat12", "pbmc68k", 18,
     {"max_kl_weight": 40.0, "n_latent": 12}, "collapse: KL weight 40"),
    ("lightning_tensorboard", "tb_steps", "gauss_lr2", "mouse_brain", 9,
     {"decoder": "gaussian", "lr": 2.0}, "diverged: lr 2"),
    ("lightning_tensorboard", "tb_epoch", "nb_warm60_dropout0.5", "pbmc68k", 110,
     {"n_epochs_kl_warmup": 60, "dropout": 0.5}, "healthy, heavy dropout"),
]


def heldout2_plan() -> list[RunSpec]:
    """Every run of the second held-out plan, in generation order (``heldout2_<source>_...``)."""
    return held_out_runs(PREFIX, _SCVI, _OTHERS)
