"""Diagnosis rules: pure functions ``rule(history) -> list[Finding]``, one concept per file.

Each rule returns ``[]`` when the history lacks what it needs, otherwise one
finding (ok, warn or fail) with the numbers in its title and evidence. The
reference document's four checks come first, in its order. The codes, and the set
of them ``--fail-on`` accepts, live in :mod:`genevae.diagnosis.codes`.

=====================  ==============================================  ===================
rule                   codes                                           file
=====================  ==============================================  ===================
reconstruction_rule    reconstruction                                  reconstruction.py
kl_trend_rule          kl_trend                                        kl.py
kl_range_rule          kl_range                                        kl.py
kl_logged_rule         kl_not_logged                                   kl.py
collapse_rule          posterior_collapse, late_collapse               collapse.py
partial_collapse_rule  partial_collapse                                collapse.py
loss_trend_rule        loss_trend                                      convergence.py
train_val_rule         train_val_gap, val_below_train                  generalization.py
overfitting_rule       overfitting                                     generalization.py
not_converged_rule     not_converged                                   convergence.py
diverged_rule          diverged                                        stability.py
unstable_rule          unstable                                        stability.py
kl_warmup_rule         kl_warmup                                       schedule.py
effective_beta_rule    effective_beta                                  reduction.py
=====================  ==============================================  ===================
"""

from __future__ import annotations

from genevae.diagnosis.rules.collapse import collapse_rule, partial_collapse_rule
from genevae.diagnosis.rules.common import Rule
from genevae.diagnosis.rules.convergence import loss_trend_rule, not_converged_rule
from genevae.diagnosis.rules.generalization import overfitting_rule, train_val_rule
from genevae.diagnosis.rules.kl import kl_logged_rule, kl_range_rule, kl_trend_rule
from genevae.diagnosis.rules.reconstruction import reconstruction_rule
from genevae.diagnosis.rules.reduction import effective_beta_rule
from genevae.diagnosis.rules.schedule import kl_warmup_rule
from genevae.diagnosis.rules.stability import diverged_rule, unstable_rule

__all__ = [
    "Rule",
    "RULES",
    "LIVE_RULES",
    "reconstruction_rule",
    "kl_trend_rule",
    "kl_range_rule",
    "kl_logged_rule",
    "collapse_rule",
    "partial_collapse_rule",
    "loss_trend_rule",
    "train_val_rule",
    "overfitting_rule",
    "not_converged_rule",
    "diverged_rule",
    "unstable_rule",
    "kl_warmup_rule",
    "effective_beta_rule",
]

#: Every rule, in the order their findings are listed.
RULES: tuple[Rule, ...] = (
    reconstruction_rule,
    kl_trend_rule,
    kl_range_rule,
    kl_logged_rule,
    collapse_rule,
    partial_collapse_rule,
    loss_trend_rule,
    train_val_rule,
    overfitting_rule,
    not_converged_rule,
    diverged_rule,
    unstable_rule,
    kl_warmup_rule,
    effective_beta_rule,
)

#: Rules that make sense after every epoch of a run still in progress.
LIVE_RULES: tuple[Rule, ...] = (diverged_rule, unstable_rule, collapse_rule, overfitting_rule)
