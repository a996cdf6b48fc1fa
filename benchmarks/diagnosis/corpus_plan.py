"""The runs of the diagnosis corpus, chosen before any was scored (issue 18).

Settings are picked to provoke each kind of run (the ``intent`` is a design note;
the true class is measured, ``truth.py``). Sources: scvi-tools ``SCVI`` (history_
exported as CSV or JSON), a Lightning module (CSVLogger, TensorBoardLogger), plain
PyTorch loops printing ten text line styles, and the same loop printing Keras
``fit()`` output. N (``n_epochs``) is what the log shows; every run trains 2N epochs.
"""

from __future__ import annotations

import zlib

from runs import RunSpec

__all__ = ["corpus_plan", "run_seed", "held_out_runs", "tiny_settings", "scvi_tiny_settings"]

# name, dataset, N, settings, intent -- scvi-tools SCVI (keyword names of SCVI and of
# plan_kwargs: lr, max_kl_weight, n_epochs_kl_warmup; scvi's default warm-up is 400 epochs)
_SCVI = [
    ("default_e100", "pbmc68k", 100, {}, "default 400-epoch warm-up, unfinished"),
    ("default_e20", "pbmc68k", 20, {}, "short run, warm-up barely started"),
    ("nowarm_e60", "pbmc68k", 60, {"n_epochs_kl_warmup": 0}, "healthy, beta 1 from the start"),
    ("warm10_e80_nb", "pbmc68k", 80, {"n_epochs_kl_warmup": 10, "gene_likelihood": "nb"}, "healthy"),
    ("kl10_e60", "pbmc68k", 60, {"max_kl_weight": 10.0, "n_epochs_kl_warmup": 0}, "collapse"),
    ("kl50_e60", "pbmc68k", 60, {"max_kl_weight": 50.0, "n_epochs_kl_warmup": 0}, "collapse"),
    ("kl100_e40", "pbmc68k", 40, {"max_kl_weight": 100.0, "n_epochs_kl_warmup": None}, "collapse"),
    ("e3", "pbmc68k", 3, {"n_epochs_kl_warmup": 0}, "not converged, 3 epochs"),
    ("lr1e-5_e30", "pbmc68k", 30, {"lr": 1e-5, "n_epochs_kl_warmup": 0}, "not converged, tiny lr"),
    ("lr1_e20", "pbmc68k", 20, {"lr": 1.0, "n_epochs_kl_warmup": 0}, "diverged, absurd lr"),
    ("lr10_e10", "pbmc68k", 10, {"lr": 10.0}, "diverged, absurd lr"),
    ("nlatent2_e80", "pbmc68k", 80, {"n_latent": 2, "n_epochs_kl_warmup": 20}, "small latent"),
    ("nlatent50_e80", "pbmc68k", 80, {"n_latent": 50, "n_epochs_kl_warmup": 20}, "wide latent"),
    ("h256_l2_e100_nb", "pbmc68k", 100, {"n_hidden": 256, "n_layers": 2, "gene_likelihood": "nb",
                                         "n_epochs_kl_warmup": 20}, "bigger net, long"),
    ("default_e40", "mouse_brain", 40, {}, "default warm-up, unfinished"),
    ("kl20_e40", "mouse_brain", 40, {"max_kl_weight": 20.0, "n_epochs_kl_warmup": 0}, "collapse"),
    ("warm5_e60_nb", "mouse_brain", 60, {"n_epochs_kl_warmup": 5, "gene_likelihood": "nb"}, "healthy"),
    ("e5", "mouse_brain", 5, {"n_epochs_kl_warmup": 0}, "not converged"),
    ("lr0.05_e40", "mouse_brain", 40, {"lr": 0.05, "n_epochs_kl_warmup": 0}, "high lr, unstable"),
    ("default_e100", "citeseq", 100, {}, "default warm-up, unfinished"),
    ("warm10_e150", "citeseq", 150, {"n_epochs_kl_warmup": 10}, "long on few cells, overfitting?"),
    ("kl30_e50", "citeseq", 50, {"max_kl_weight": 30.0, "n_epochs_kl_warmup": 0}, "collapse"),
    ("nlatent30_l2_e150", "citeseq", 150, {"n_latent": 30, "n_layers": 2, "n_hidden": 256,
                                           "n_epochs_kl_warmup": 10}, "big model, long: overfitting?"),
    ("lr3e-5_e40", "citeseq", 40, {"lr": 3e-5, "n_epochs_kl_warmup": 0}, "not converged, tiny lr"),
    ("warm10_e100", "geuvadis", 100, {"n_epochs_kl_warmup": 10, "batch_size": 32}, "tiny bulk data"),
    ("tiny120_big_e150", "pbmc68k", 150, {"n_pool_cells": 120, "n_hidden": 512, "n_layers": 2,
                                          "n_epochs_kl_warmup": 0, "max_kl_weight": 0.1,
                                          "batch_size": 32}, "overfitting: 120 cells, big net"),
    ("e8_lr3e-4", "citeseq", 8, {"lr": 3e-4, "n_epochs_kl_warmup": 0}, "not converged"),
    ("tiny150_big_e120", "pbmc68k", 120, {"n_pool_cells": 150, "n_hidden": 512, "n_layers": 2,
                                          "n_epochs_kl_warmup": 0, "max_kl_weight": 0.1,
                                          "batch_size": 32}, "overfitting: 150 cells, big net"),
    ("tiny120_e150_nb", "mouse_brain", 150, {"n_pool_cells": 120, "n_hidden": 256,
                                             "gene_likelihood": "nb", "n_epochs_kl_warmup": 0,
                                             "batch_size": 32}, "overfitting: 120 cells"),
]
_SCVI_JSON = {  # run -> export style other than CSV
    "default_e20": "json_pandas", "kl50_e60": "json_lists", "lr1_e20": "json_pandas",
    "nlatent50_e80": "json_lists", "kl20_e40": "json_pandas", "warm10_e150": "json_lists",
    "lr3e-5_e40": "json_pandas", "tiny150_big_e120": "json_lists",
}

# Templates of the plain loops, Lightning and Keras-style runs: name, dataset, N,
# settings (train_loop.py / vae_torch.py keyword names), intent.
_BIG_DECODER = {"decoder_hidden": 512, "decoder_layers": 2}
_TEMPLATES = [
    ("nb_warm10", "pbmc68k", 60, {"n_epochs_kl_warmup": 10}, "healthy"),
    ("nb_mouse", "mouse_brain", 40, {"n_epochs_kl_warmup": 5}, "healthy"),
    ("nb_mean_reduction", "pbmc68k", 40, {"reduction": "mean"}, "collapse: per-element mean, NB"),
    ("nb_beta50", "citeseq", 40, {"max_kl_weight": 50.0}, "collapse: KL weight 50, summed KL"),
    ("nb_powerful_decoder", "pbmc68k", 60, {"decoder_hidden": 512, "decoder_layers": 3,
                                            "n_latent": 32}, "powerful decoder"),
    ("nb_few_epochs", "mouse_brain", 3, {}, "not converged: 3 epochs"),
    ("nb_small_lr", "pbmc68k", 30, {"lr": 1e-5}, "not converged: tiny lr"),
    ("sgd_lr0.1", "pbmc68k", 10, {"optimizer": "sgd", "lr": 0.1}, "diverged: SGD, summed loss"),
    ("gauss_adam_lr5", "citeseq", 15, {"decoder": "gaussian", "lr": 5.0}, "diverged: absurd lr"),
    ("mse_geuvadis_big", "geuvadis", 300, {"decoder": "mse", "max_kl_weight": 0.001,
                                           "batch_size": 16, "n_latent": 16, **_BIG_DECODER},
     "overfitting: 61 bulk samples, big decoder, long"),
    ("nb_geuvadis_big", "geuvadis", 150, {"batch_size": 16, "n_latent": 16,
                                          "max_kl_weight": 0.1, **_BIG_DECODER}, "overfitting"),
    ("nb_tiny_pbmc_big", "pbmc68k", 150, {"n_train_cells": 100, "batch_size": 32,
                                          "max_kl_weight": 0.05, "n_latent": 16, **_BIG_DECODER},
     "overfitting: 100 cells, big decoder"),
    ("gauss_tiny_pbmc_big", "pbmc68k", 100, {"n_train_cells": 100, "batch_size": 32,
                                             "decoder": "gaussian", "max_kl_weight": 0.05,
                                             "n_latent": 16, **_BIG_DECODER},
     "overfitting: 100 cells, big decoder"),
    ("nb_warmup_unfinished", "mouse_brain", 30, {"n_epochs_kl_warmup": 200},
     "KL warm-up unfinished"),
    ("gauss_healthy", "pbmc68k", 50, {"decoder": "gaussian", "n_epochs_kl_warmup": 5}, "healthy"),
    ("mse_mean_beta0.5", "citeseq", 40, {"decoder": "mse", "reduction": "mean",
                                         "max_kl_weight": 0.5}, "reference convention on counts"),
    ("nb_citeseq_long", "citeseq", 80, {"n_epochs_kl_warmup": 10, "n_hidden": 256},
     "long on few cells: overfitting?"),
]
# Added runs for the thinner classes (chosen on the truth of the first 73, before any
# scoring): (source, style, template), templates from _TEMPLATES or _EXTRA_TEMPLATES.
_EXTRA_TEMPLATES = [
    ("nb_lr1e-4_short", "mouse_brain", 10, {"lr": 1e-4}, "not converged: small lr, short"),
]
_EXTRA = [
    ("keras", "keras_bar", "nb_tiny_pbmc_big"), ("loop", "bracket", "nb_tiny_pbmc_big"),
    ("loop", "reference", "sgd_lr0.1"), ("keras", "keras_v2", "nb_lr1e-4_short"),
    ("loop", "jsonl", "nb_lr1e-4_short"), ("lightning_csv", "csv_epoch", "nb_lr1e-4_short"),
]
_TEXT_STYLES = ("reference", "bracket", "terse", "kv_comma", "tqdm", "jsonl",
                "pytorch_example", "per_step", "dict", "logging")
_KERAS_STYLES = ("keras_bar", "keras_v2")
_RUNS_PER_STYLE = 3
# Lightning runs: (style, template index)
_LIGHTNING = [
    ("csv_steps", 0), ("csv_steps", 1), ("csv_steps", 11), ("csv_epoch", 2), ("csv_epoch", 14),
    ("tb_steps", 8), ("tb_steps", 3), ("tb_steps", 13), ("tb_epoch", 12), ("tb_epoch", 6),
]


def run_seed(run_id: str) -> int:
    """A run's seed, fixed by its id (adding a run changes no other run)."""
    return zlib.crc32(run_id.encode()) % 100_000


def held_out_runs(prefix: str, scvi_rows: list[tuple], other_rows: list[tuple]) -> list[RunSpec]:
    """The runs of a held-out plan, in generation order, ids ``<prefix><source>_...``.

    ``scvi_rows``: (style, name, dataset, N, settings, intent) of scvi-tools runs (id
    ``<prefix>scvi_<dataset>_<name>``); ``other_rows``: (source, style, name, dataset,
    N, settings, intent) of the loops, Keras-style and Lightning runs (id
    ``<prefix><source>_<style>_<name>``, Lightning sources as ``lightning``).
    """
    runs = []
    for style, name, dataset, n, settings, intent in scvi_rows:
        run_id = f"{prefix}scvi_{dataset}_{name}"
        runs.append(RunSpec(run_id, "scvi", style, dataset, n, run_seed(run_id), dict(settings),
                            intent))
    for source, style, name, dataset, n, settings, intent in other_rows:
        short = "lightning" if source.startswith("lightning") else source
        run_id = f"{prefix}{short}_{style}_{name}"
        runs.append(RunSpec(run_id, source, style, dataset, n, run_seed(run_id), dict(settings),
                            intent))
    return runs


def tiny_settings(n_cells: int, n_latent: int, *, batch_size: int, kl_weight: float,
                  decoder_hidden: int, decoder_layers: int) -> dict:
    """Tiny-data settings of the loops and Lightning: few cells, little KL, a decoder much
    bigger than the encoder (it memorises a tiny training set)."""
    return {"n_train_cells": n_cells, "batch_size": batch_size, "max_kl_weight": kl_weight,
            "n_latent": n_latent, "decoder_hidden": decoder_hidden,
            "decoder_layers": decoder_layers}


def scvi_tiny_settings(n_cells: int, *, n_hidden: int, n_layers: int, batch_size: int,
                       kl_weight: float) -> dict:
    """Tiny-data settings of scvi-tools: a seeded subsample of the pool, a big network."""
    return {"n_pool_cells": n_cells, "n_hidden": n_hidden, "n_layers": n_layers,
            "n_epochs_kl_warmup": 0, "max_kl_weight": kl_weight, "batch_size": batch_size}


def corpus_plan() -> list[RunSpec]:
    """Every run of the corpus, in generation order."""
    runs = []
    for name, dataset, n, settings, intent in _SCVI:
        style = _SCVI_JSON.get(name, "csv")
        run_id = f"scvi_{dataset}_{name}"
        runs.append(RunSpec(run_id, "scvi", style, dataset, n, run_seed(run_id), dict(settings),
                            intent))
    styles = _TEXT_STYLES + _KERAS_STYLES
    for s_index, style in enumerate(styles):
        source = "keras" if style in _KERAS_STYLES else "loop"
        for j in range(_RUNS_PER_STYLE):
            t_index = (s_index * _RUNS_PER_STYLE + j) % len(_TEMPLATES)
            name, dataset, n, settings, intent = _TEMPLATES[t_index]
            run_id = f"{source}_{style}_{name}"
            runs.append(RunSpec(run_id, source, style, dataset, n, run_seed(run_id),
                                dict(settings), intent))
    for style, t_index in _LIGHTNING:
        name, dataset, n, settings, intent = _TEMPLATES[t_index]
        source = "lightning_csv" if style.startswith("csv") else "lightning_tensorboard"
        run_id = f"lightning_{style}_{name}"
        runs.append(RunSpec(run_id, source, style, dataset, n, run_seed(run_id), dict(settings),
                            intent))
    templates = {t[0]: t for t in _TEMPLATES + _EXTRA_TEMPLATES}
    for source, style, template in _EXTRA:
        name, dataset, n, settings, intent = templates[template]
        prefix = "lightning" if source.startswith("lightning") else source
        run_id = f"{prefix}_{style}_{name}"
        runs.append(RunSpec(run_id, source, style, dataset, n, run_seed(run_id), dict(settings),
                            intent))
    return runs
