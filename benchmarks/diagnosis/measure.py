"""Quantities measured from a trained model on held-out cells (the inputs of ``truth.py``).

A source (scvi-tools, Lightning, a plain loop) hands over a :class:`ModelView`: two
functions that give the encoder's Gaussian posterior and the decoder's per-cell
negative log-likelihood. Nothing here reads a training log or any genevae rule.

All quantities are in nats per cell (summed over genes, summed over latent dimensions)
unless the name says per dimension.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

__all__ = ["ModelView", "LatentMeasures", "heldout_loss", "latent_measures", "params_finite"]

#: Seed of the fixed noise that turns the posterior into one z per held-out cell, the
#: same at every epoch (common random numbers: the epoch-to-epoch change of the held-out
#: loss is the model's, not the Monte Carlo draw's).
EVAL_NOISE_SEED = 1234
#: Seed of the "random other cell" pairing of the decoder-use test.
PAIRING_SEED = 4321
#: Probe: classes with fewer held-out cells than this are left out, and the probe is
#: skipped when fewer than two classes remain (a 5-fold estimate needs a few per fold).
PROBE_MIN_CELLS_PER_CLASS = 10
PROBE_N_FOLDS = 5


@dataclass(frozen=True)
class ModelView:
    """The two views of a trained VAE the truth needs.

    Attributes
    ----------
    posterior
        ``x (cells, genes) counts -> (mean, std)`` of q(z|x), each (cells, n_latent).
    nll
        ``(x (cells, genes), z (cells, n_latent)) -> (cells,)`` negative log-likelihood
        of the counts under the decoder, in nats per cell (summed over genes). The
        source keeps any observed covariate (library size, batch) of each cell.
    """

    posterior: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    nll: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class LatentMeasures:
    """Latent-space measurements at one model state (see ``truth.py`` for their use).

    Attributes
    ----------
    rate_nats
        Mean over held-out cells of KL(q(z|x) || N(0, I)), summed over dimensions.
    kl_per_dim_nats
        Mean over held-out cells of each dimension's KL, shape (n_latent,).
    delta_nll_nats
        Mean over held-out cells of NLL(x | mean of a random other cell's q) minus
        NLL(x | mean of its own q): how much the decoder uses z.
    probe_balanced_accuracy, probe_chance
        Cross-validated logistic-regression balanced accuracy of the labels from the
        posterior means, and its chance level 1 / n_classes; ``None`` without labels.
    """

    rate_nats: float
    kl_per_dim_nats: tuple[float, ...]
    delta_nll_nats: float
    probe_balanced_accuracy: float | None
    probe_chance: float | None


def _kl_to_standard_normal(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, std^2) || N(0, 1)) per cell and dimension, (cells, n_latent), nats."""
    return 0.5 * (mean**2 + std**2 - 1.0) - torch.log(std)


def _fixed_noise(shape: torch.Size) -> torch.Tensor:
    generator = torch.Generator().manual_seed(EVAL_NOISE_SEED)
    return torch.randn(shape, generator=generator)


@torch.no_grad()
def heldout_loss(view: ModelView, x: torch.Tensor, kl_weight: float) -> float:
    """The run's objective on held-out cells: mean of NLL(x | z) + kl_weight * KL, nats.

    One z per cell, z = mean + std * eps with the same eps at every call; ``kl_weight``
    is the run's target weight in the per-cell-sum convention (a loss averaged over
    genes and latent dimensions has kl_weight * n_genes / n_latent here).
    """
    mean, std = view.posterior(x)
    z = mean + std * _fixed_noise(mean.shape)
    kl = _kl_to_standard_normal(mean, std).sum(-1)
    return float((view.nll(x, z) + kl_weight * kl).mean())


def _probe(features: np.ndarray, labels: np.ndarray) -> tuple[float | None, float | None]:
    classes, counts = np.unique(labels, return_counts=True)
    kept = classes[counts >= PROBE_MIN_CELLS_PER_CLASS]
    if len(kept) < 2 or not np.all(np.isfinite(features)):
        return None, None
    mask = np.isin(labels, kept)
    x, y = features[mask], labels[mask]
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    folds = StratifiedKFold(PROBE_N_FOLDS, shuffle=True, random_state=0)
    predicted = cross_val_predict(LogisticRegression(max_iter=2000), x, y, cv=folds)
    return float(balanced_accuracy_score(y, predicted)), 1.0 / len(kept)


@torch.no_grad()
def latent_measures(view: ModelView, x: torch.Tensor, labels: np.ndarray | None) -> LatentMeasures:
    """Rate, per-dimension KL, decoder use and probe on held-out cells (see the class)."""
    mean, std = view.posterior(x)
    kl = _kl_to_standard_normal(mean, std)  # (cells, n_latent)
    n_cells = mean.shape[0]
    rng = np.random.default_rng(PAIRING_SEED)
    other = (np.arange(n_cells) + rng.integers(1, n_cells, size=n_cells)) % n_cells
    own_nll = view.nll(x, mean)
    other_nll = view.nll(x, mean[torch.as_tensor(other)])
    accuracy, chance = (None, None) if labels is None else _probe(mean.numpy(), labels)
    return LatentMeasures(
        rate_nats=float(kl.sum(-1).mean()),
        kl_per_dim_nats=tuple(float(v) for v in kl.mean(0)),
        delta_nll_nats=float((other_nll - own_nll).mean()),
        probe_balanced_accuracy=accuracy,
        probe_chance=chance,
    )


def params_finite(module: torch.nn.Module) -> bool:
    """Whether every parameter and buffer of the model is finite."""
    tensors = [*module.parameters(), *module.buffers()]
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


class Tracker:
    """Collects, during one 2N-epoch training, what the truth needs.

    Call :meth:`epoch_end` before training (epoch 0) and after every epoch. It records
    the held-out loss at every epoch and, at epoch ``n_logged`` (the last epoch the log
    shows), the latent measurements and whether the parameters are finite. The random
    number state of the training is saved and restored around each measurement, so
    measuring does not change the run.
    """

    def __init__(self, view: ModelView, x_test: torch.Tensor, labels: np.ndarray | None,
                 kl_weight: float, n_logged: int) -> None:
        self.view, self.x_test, self.labels = view, x_test, labels
        self.kl_weight, self.n_logged = kl_weight, n_logged
        self.heldout: list[float] = []
        self.latent: LatentMeasures | None = None
        self.params_finite: bool | None = None

    def epoch_end(self, epoch: int, module: torch.nn.Module) -> None:
        """Measure the model after ``epoch`` epochs (0: untrained)."""
        if epoch != len(self.heldout):
            raise RuntimeError(f"epoch {epoch} measured out of order ({len(self.heldout)} expected)")
        was_training = module.training
        module.eval()
        with torch.random.fork_rng(devices=[]):
            self.heldout.append(heldout_loss(self.view, self.x_test, self.kl_weight))
            if epoch == self.n_logged:
                self.latent = latent_measures(self.view, self.x_test, self.labels)
                self.params_finite = params_finite(module)
        module.train(was_training)
