"""Plain PyTorch runs: :func:`~train_loop.train_loop` printing one line style
(``line_styles.py``), the Keras styles included."""

from __future__ import annotations

from pathlib import Path

import torch
from bench_data import Dataset
from line_styles import make_printer
from runs import RunSpec, SourceResult
from train_loop import VALIDATION_FRACTION, train_loop

__all__ = ["train_plain"]

#: Styles whose scripts print a banner before the first epoch (as many scripts do).
_BANNER_STYLES = ("bracket", "tqdm", "pytorch_example", "logging", "dict")


def train_plain(spec: RunSpec, data: Dataset, folder: Path) -> SourceResult:
    """Train 2N epochs with the plain loop; the log holds what the N-epoch script printed."""
    torch.set_num_threads(1)
    s = spec.settings
    n_val = max(1, int(round(VALIDATION_FRACTION * data.pool.n_obs)))
    n_train = min(data.pool.n_obs - n_val, s.get("n_train_cells") or data.pool.n_obs)
    batch_size = s.get("batch_size", 128)
    header = ""
    if spec.style in _BANNER_STYLES:
        header = (f"Using device: cpu\nTraining VAE on {n_train} cells x {data.n_genes} genes "
                  f"(n_latent={s.get('n_latent', 10)}, decoder={s.get('decoder', 'nb')}, "
                  f"lr={s.get('lr', 1e-3)}, epochs={spec.n_epochs})")
    printer, path = make_printer(spec.style, folder, header=header, n_train=n_train,
                                 batch_size=batch_size, n_batches=-(-n_train // batch_size),
                                 n_epochs=spec.n_epochs)
    return train_loop(spec, data, printer, path)
