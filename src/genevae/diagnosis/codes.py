"""Finding codes: every code a check can emit, and which failing code names the verdict.

A code is a finding's stable machine name (:attr:`~genevae.diagnosis.findings.Finding.code`):
``--fail-on`` takes codes, and a failing run's verdict is one. The checks build their
findings with these constants, the engine ranks them by :data:`VERDICT_PRIORITY`, and
no other module spells a code out.
"""

from __future__ import annotations

__all__ = [
    "RECONSTRUCTION",
    "KL_TREND",
    "KL_RANGE",
    "KL_NOT_LOGGED",
    "POSTERIOR_COLLAPSE",
    "LATE_COLLAPSE",
    "PARTIAL_COLLAPSE",
    "LOSS_TREND",
    "TRAIN_VAL_GAP",
    "VAL_BELOW_TRAIN",
    "OVERFITTING",
    "NOT_CONVERGED",
    "DIVERGED",
    "UNSTABLE",
    "KL_WARMUP",
    "EFFECTIVE_BETA",
    "ACTIVE_UNITS",
    "PROBE_AT_MAJORITY",
    "PROBE_BELOW_PCA",
    "PROBE_LABEL_IS_CONDITION",
    "MI_AT_CEILING",
    "PRIOR_MISMATCH",
    "LABEL_SILHOUETTE",
    "BATCH_MIXING",
    "UNINFORMATIVE_LATENT",
    "HEALTHY",
    "FINDING_CODES",
    "LATENT_FINDING_CODES",
    "VERDICT_PRIORITY",
]

# -- the rules on the loss curves (genevae.diagnosis.rules) ----------------------------

RECONSTRUCTION = "reconstruction"
KL_TREND = "kl_trend"
KL_RANGE = "kl_range"
KL_NOT_LOGGED = "kl_not_logged"
POSTERIOR_COLLAPSE = "posterior_collapse"
LATE_COLLAPSE = "late_collapse"
PARTIAL_COLLAPSE = "partial_collapse"
LOSS_TREND = "loss_trend"
TRAIN_VAL_GAP = "train_val_gap"
VAL_BELOW_TRAIN = "val_below_train"
OVERFITTING = "overfitting"
NOT_CONVERGED = "not_converged"
DIVERGED = "diverged"
UNSTABLE = "unstable"
KL_WARMUP = "kl_warmup"
EFFECTIVE_BETA = "effective_beta"

# -- the checks on the encoder's outputs (genevae.diagnosis.latent_findings) -----------

ACTIVE_UNITS = "active_units"
PROBE_AT_MAJORITY = "probe_at_majority"
PROBE_BELOW_PCA = "probe_below_pca"
PROBE_LABEL_IS_CONDITION = "probe_label_is_condition"
MI_AT_CEILING = "mi_at_ceiling"
PRIOR_MISMATCH = "prior_mismatch"
LABEL_SILHOUETTE = "label_silhouette"
BATCH_MIXING = "batch_mixing"
UNINFORMATIVE_LATENT = "uninformative_latent"

#: The verdict of a run with no failing finding (not a finding code).
HEALTHY = "healthy"

#: Every code a rule can emit (``--fail-on`` accepts these).
FINDING_CODES: frozenset[str] = frozenset({
    RECONSTRUCTION,
    KL_TREND,
    KL_RANGE,
    KL_NOT_LOGGED,
    POSTERIOR_COLLAPSE,
    LATE_COLLAPSE,
    PARTIAL_COLLAPSE,
    LOSS_TREND,
    TRAIN_VAL_GAP,
    VAL_BELOW_TRAIN,
    OVERFITTING,
    NOT_CONVERGED,
    DIVERGED,
    UNSTABLE,
    KL_WARMUP,
    EFFECTIVE_BETA,
})

#: The codes only the latent checks emit (for ``--fail-on`` validation); they also
#: emit :data:`POSTERIOR_COLLAPSE`, a rule's code too.
LATENT_FINDING_CODES: frozenset[str] = frozenset({
    ACTIVE_UNITS,
    PROBE_AT_MAJORITY,
    PROBE_BELOW_PCA,
    PROBE_LABEL_IS_CONDITION,
    MI_AT_CEILING,
    PRIOR_MISMATCH,
    LABEL_SILHOUETTE,
    BATCH_MIXING,
    UNINFORMATIVE_LATENT,
})

#: Failing codes, most important first (root causes and the problems that make the
#: latent space useless first); codes not listed come after these, in the order given.
VERDICT_PRIORITY: tuple[str, ...] = (
    DIVERGED,
    POSTERIOR_COLLAPSE,
    LATE_COLLAPSE,
    UNINFORMATIVE_LATENT,
    ACTIVE_UNITS,
    PROBE_AT_MAJORITY,
    OVERFITTING,
    UNSTABLE,
    EFFECTIVE_BETA,
    KL_RANGE,
    PARTIAL_COLLAPSE,
    KL_WARMUP,
    TRAIN_VAL_GAP,
    RECONSTRUCTION,
    KL_TREND,
    LOSS_TREND,
    NOT_CONVERGED,
    # What the loss alone shows (any problem above) comes before what it cannot show.
    KL_NOT_LOGGED,
    VAL_BELOW_TRAIN,
)
