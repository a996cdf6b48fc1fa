"""Model layer: likelihoods, KL, networks and the conditional VAE."""

from genevae.model.kl import kl_normal_standard
from genevae.model.likelihoods import (
    FIXED_GAUSSIAN_VARIANCE,
    NegativeBinomial,
    ZeroInflatedNegativeBinomial,
)
from genevae.model.networks import MLP, ConditionEncoder
from genevae.model.vae import VAE, LossOutput

__all__ = [
    "FIXED_GAUSSIAN_VARIANCE",
    "NegativeBinomial",
    "ZeroInflatedNegativeBinomial",
    "kl_normal_standard",
    "MLP",
    "ConditionEncoder",
    "VAE",
    "LossOutput",
]
