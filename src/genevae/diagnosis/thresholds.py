"""Every number the diagnosis rules compare against, with its source.

KL values are in nats per latent dimension (the scale of the reference document's
bands, see :mod:`genevae.diagnosis.units`). Loss changes are measured as shares of
the run's *gain*, the drop from the first judged epoch to the best one, so the
same threshold works for per-element means (≈ 0.4) and per-cell nats (≈ 1,500)
and for losses that cross zero (Gaussian likelihood with learned variance).

Sources: "reference doc" is ``vae-training-diagnostics.md``; "reference facts" is
the "Facts about that example run" section of the reference README; "genevae
choice" names the reason where no source gives a number.
"""

from __future__ import annotations

import math

__all__ = [
    "HEALTHY_KL_PER_DIM",
    "HIGH_KL_PER_DIM",
    "ACTIVE_DIM_KL",
    "COLLAPSE_KL_PER_DIM",
    "COLLAPSE_RATE",
    "LATE_COLLAPSE_MIN_PEAK_RATE",
    "COLLAPSE_MIN_EPOCHS",
    "NEVER_USED_MIN_EPOCHS",
    "LATE_COLLAPSE_MIN_PEAK",
    "PARTIAL_COLLAPSE_DEAD_SHARE",
    "KL_TREND_TOLERANCE",
    "RECON_MIN_IMPROVEMENT",
    "LOSS_MIN_IMPROVEMENT",
    "NOT_CONVERGED_TAIL_SHARE",
    "NOT_CONVERGED_TAIL_GAIN",
    "VAL_UNSETTLED_SWING",
    "UNSTABLE_RISE",
    "UNSTABLE_MIN_RISES",
    "EXPLOSION_FACTOR",
    "TRAIN_VAL_GAP_WARN",
    "VAL_BELOW_TRAIN_SHARE",
    "OVERFIT_WARN_RISE",
    "OVERFIT_FAIL_RISE",
    "OVERFIT_MIN_EPOCHS",
    "OVERFIT_FAIL_RELATIVE",
    "EFFECTIVE_BETA_WARN",
    "BETA_FULL_TOLERANCE",
    "WARMUP_MIN_FULL_EPOCHS",
]

# -- KL per latent dimension ---------------------------------------------------------

#: KL per dimension of a latent space that encodes meaningful variation (nats).
HEALTHY_KL_PER_DIM = (0.1, 1.0)  # reference doc, "Interpreting KL Values"
#: Above this the posterior is far from the prior: underfitting or β too low (nats).
HIGH_KL_PER_DIM = 2.0  # reference doc, "Interpreting KL Values" ("> 2.0")
#: A latent dimension whose KL exceeds this carries information (nats).
ACTIVE_DIM_KL = 0.01  # reference facts: "44 collapsed (KL below 0.01)"
#: "KL ≈ 0": the average dimension is inactive, the posterior equals the prior.
COLLAPSE_KL_PER_DIM = ACTIVE_DIM_KL  # reference doc "Posterior Collapse" + reference facts
#: The rate, KL summed over latent dimensions (nats per cell), below which the latent
#: carries less than one binary split of the cells, whatever its size: the rate bounds
#: the information the latent holds about a cell, rate ≥ I(x; z) (Alemi et al. 2018),
#: and telling two groups of cells apart takes log 2 nats.
COLLAPSE_RATE = math.log(2)  # information: one bit
#: A late collapse on the rate scale first carried at least two binary splits (nats).
LATE_COLLAPSE_MIN_PEAK_RATE = math.log(4)  # information: two bits
#: Epochs KL must stay below the collapse level to count as sustained, not a dip.
COLLAPSE_MIN_EPOCHS = 5  # genevae choice: one dip can recover; five epochs rarely do
#: ... for a latent never yet in use (never in the healthy band, or above one bit):
#: it has no dip to wait out, and two epochs show that ≈ 0 is where it is.
NEVER_USED_MIN_EPOCHS = 2  # genevae choice: one epoch could be a single noisy value
#: A late collapse first reached the healthy band, then fell to ≈ 0 (nats).
LATE_COLLAPSE_MIN_PEAK = HEALTHY_KL_PER_DIM[0]  # reference doc, lower edge of healthy band
#: Warn when at least this share of latent dimensions is inactive.
PARTIAL_COLLAPSE_DEAD_SHARE = 0.5  # genevae choice: most of the latent space unused
#: Relative KL change between first and last judged epoch below which KL is "stable".
KL_TREND_TOLERANCE = 0.05  # genevae choice: 5% is within epoch-to-epoch noise

# -- Loss curves ---------------------------------------------------------------------

#: Reconstruction must improve by this share of its first-epoch magnitude.
RECON_MIN_IMPROVEMENT = 0.01  # genevae choice: < 1% over a run is "stuck" (reference doc red flag)
#: Total loss must improve by this share of its first judged value.
LOSS_MIN_IMPROVEMENT = 0.01  # genevae choice: same as reconstruction
#: The last share of a run's epochs whose improvement tells whether it levelled off
#: (at least two epoch-to-epoch steps, so a short run is judged too).
NOT_CONVERGED_TAIL_SHARE = 0.2  # genevae choice: the last fifth of the run
#: Not converged when the tail still made more than this share of the run's whole gain
#: (per fifth of the run: a short run's tail of at least 2 steps may be longer).
#: Scale-free in run length: for a loss decaying as exp(-t/τ), a last fifth that gains
#: 5% of the total means that training as long again gains another ~8% (doubling N
#: gains e^(-N/τ) of the gain so far); any noise-free curve that is still falling
#: steeply at its end is caught, however few epochs it has.
NOT_CONVERGED_TAIL_GAIN = 0.05  # genevae choice
#: Not converged when the validation loss still swings, over the same tail, by more
#: than this share of what the training loss gained over the whole run (max - min of
#: the tail's validation values against the training loss's first value minus its
#: lowest). The tail share above reads the best loss so far, which a noisy validation
#: loss keeps flat; a swing of a quarter of all that training achieved is 2.5 times
#: the 10% further gain that counts as "not converged", so "levelled off" cannot be
#: read from it: the fit to held-out cells has not settled. Chosen on the 297 runs of
#: benchmarks/diagnosis' first five corpora, where healthy runs swing by at most 0.11 of
#: the training gain; on the sixth (held-out 5), scored once with it, by at most 0.19.
VAL_UNSETTLED_SWING = 0.25  # genevae choice
#: A rise between consecutive epochs larger than this share of the gain is a jump.
UNSTABLE_RISE = 0.1  # genevae choice: noise stays well below a tenth of the gain
#: Jumps that make a run unstable (a warning).
UNSTABLE_MIN_RISES = 2  # genevae choice: one jump can be a hard batch
#: A rise above the running minimum of this many times the largest |loss| seen so
#: far is an explosion: no β schedule or noise moves a loss that far.
EXPLOSION_FACTOR = 10.0  # genevae choice

# -- Train versus validation ---------------------------------------------------------

#: Validation above training by more than this share of |training loss|: a gap.
TRAIN_VAL_GAP_WARN = 0.1  # genevae choice; reference doc "Train ≈ Val"
#: Validation below training in at least this share of epochs is "persistent".
VAL_BELOW_TRAIN_SHARE = 0.8  # genevae choice; reference facts: below in all 30 epochs
#: Validation given back this share of its gain after its best epoch: overfitting.
OVERFIT_WARN_RISE = 0.05  # genevae choice; reference doc "Diverging train/val"
OVERFIT_FAIL_RISE = 0.1  # genevae choice: past the noise scale of UNSTABLE_RISE, a tenth
# of what was learned is given back: "diverging train/val" (reference doc red flag)
#: ... or validation ended this share of its (positive) best value above that best:
#: the first epoch's drop (huge for count likelihoods) cannot hide the loss.
OVERFIT_FAIL_RELATIVE = TRAIN_VAL_GAP_WARN  # genevae choice: same scale as the train-val gap
#: Epochs after the best validation epoch before a rise counts.
OVERFIT_MIN_EPOCHS = 3  # genevae choice: not a single noisy epoch

# -- β and its schedule --------------------------------------------------------------

#: Effective β (relative to the true per-cell ELBO) above which KL is over-weighted.
EFFECTIVE_BETA_WARN = 5.0  # genevae choice: β ≫ 1; reference facts: 0.5·2000/64 ≈ 15.6
#: β within this share of its maximum counts as full β (KL is judged there).
BETA_FULL_TOLERANCE = 0.01  # genevae choice: below the resolution of any schedule step
#: Epochs at full β needed after a warm-up (or within cycles) to judge KL.
WARMUP_MIN_FULL_EPOCHS = COLLAPSE_MIN_EPOCHS  # genevae choice: enough to judge collapse
