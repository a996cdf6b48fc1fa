"""The benchmark's own small VAE, as a user would write one (plain PyTorch).

Encoder: log1p counts -> MLP -> Gaussian q(z|x) (mean, log-variance). Decoders:

``nb``        negative binomial on the counts: mean = softmax(h) * library size,
              one inverse dispersion per gene (scVI's parameterisation).
``gaussian``  Gaussian on y = log1p(counts / library * 1e4), learned variance per gene.
``mse``       squared error on that y: a Gaussian with fixed variance 1/2, so the
              summed squared error *is* the negative log-likelihood up to a constant.

``loss`` returns the batch-mean objective under one of two reductions:

``sum``   reconstruction summed over genes, KL summed over latent dimensions.
``mean``  both averaged per element (over genes; over latent dimensions), the
          reference document's convention; relative to ``sum`` it multiplies the KL
          weight by n_genes / n_latent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["CountVAE", "LossParts", "kl_weight_at", "effective_kl_weight"]

#: Library size the Gaussian decoders' log1p target is normalised to (scanpy's
#: ``normalize_total(target_sum=1e4)`` convention).
TARGET_SUM = 1e4
#: Variance of the ``mse`` decoder's Gaussian: 1/2 makes NLL = squared error + const.
MSE_VARIANCE = 0.5


@dataclass(frozen=True)
class LossParts:
    """Batch-mean loss, reconstruction and (unweighted) KL in the run's reduction."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor


def kl_weight_at(epoch: int, max_kl_weight: float, n_epochs_kl_warmup: int) -> float:
    """Linear KL warm-up (reference document): weight during 0-based ``epoch``."""
    if n_epochs_kl_warmup <= 0:
        return max_kl_weight
    return max_kl_weight * min(1.0, epoch / n_epochs_kl_warmup)


def effective_kl_weight(kl_weight: float, reduction: str, n_genes: int, n_latent: int) -> float:
    """The KL weight in the per-cell-sum convention (see the module docstring)."""
    return kl_weight * n_genes / n_latent if reduction == "mean" else kl_weight


def _mlp(n_in: int, n_hidden: int, n_layers: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [nn.Linear(n_in if i == 0 else n_hidden, n_hidden), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class CountVAE(nn.Module):
    """A small VAE for counts (see the module docstring for the decoders)."""

    def __init__(self, n_genes: int, n_latent: int = 10, n_hidden: int = 128,
                 n_layers: int = 1, decoder: str = "nb", decoder_hidden: int | None = None,
                 decoder_layers: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        if decoder not in ("nb", "gaussian", "mse"):
            raise ValueError(f"decoder must be nb, gaussian or mse, not {decoder!r}")
        self.decoder_kind, self.n_latent = decoder, n_latent
        self.encoder = _mlp(n_genes, n_hidden, n_layers, dropout)
        self.z_mean = nn.Linear(n_hidden, n_latent)
        self.z_log_var = nn.Linear(n_hidden, n_latent)
        d_hidden = decoder_hidden or n_hidden
        self.decoder = _mlp(n_latent, d_hidden, decoder_layers or n_layers, dropout)
        self.out = nn.Linear(d_hidden, n_genes)
        self.gene_param = nn.Parameter(torch.zeros(n_genes))  # log theta or log sigma

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of q(z|x), each (cells, n_latent)."""
        h = self.encoder(torch.log1p(x))
        return self.z_mean(h), torch.exp(0.5 * self.z_log_var(h))

    def nll(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) per cell, summed over genes, nats, (cells,)."""
        h = self.out(self.decoder(z))  # (cells, n_genes)
        library = x.sum(1, keepdim=True)
        if self.decoder_kind == "nb":
            mu = torch.softmax(h, -1) * library
            theta = torch.exp(self.gene_param)
            log_p = (torch.lgamma(x + theta) - torch.lgamma(theta) - torch.lgamma(x + 1)
                     + theta * (torch.log(theta) - torch.log(theta + mu))
                     + x * (torch.log(mu + 1e-8) - torch.log(theta + mu)))
            return -log_p.sum(-1)
        y = torch.log1p(x / library.clamp(min=1) * TARGET_SUM)
        if self.decoder_kind == "mse":
            log_var = torch.full_like(self.gene_param, math.log(MSE_VARIANCE))
        else:
            log_var = 2 * self.gene_param
        log_p = -0.5 * (math.log(2 * math.pi) + log_var + (y - h) ** 2 / torch.exp(log_var))
        return -log_p.sum(-1)

    def loss(self, x: torch.Tensor, kl_weight: float, reduction: str = "sum") -> LossParts:
        """Batch-mean beta-ELBO loss; ``reduction`` is ``sum`` or ``mean`` (module doc)."""
        mean, std = self.posterior(x)
        z = mean + std * torch.randn_like(std)
        recon = self.nll(x, z)  # (cells,)
        if self.decoder_kind == "mse":  # log the squared error itself, as scripts do
            recon = recon - 0.5 * math.log(2 * math.pi * MSE_VARIANCE) * x.shape[1]
        kl = (0.5 * (mean**2 + std**2 - 1.0) - torch.log(std)).sum(-1)  # (cells,)
        if reduction == "mean":
            recon, kl = recon / x.shape[1], kl / self.n_latent
        elif reduction != "sum":
            raise ValueError(f"reduction must be sum or mean, not {reduction!r}")
        recon, kl = recon.mean(), kl.mean()
        return LossParts(recon + kl_weight * kl, recon, kl)
