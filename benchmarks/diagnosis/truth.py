"""The true class of a benchmark run, measured from the trained model (issue 18).

Fixed before any run was scored; nothing here reads genevae's rules or thresholds.
Every run trains 2N epochs in one go; the diagnoser sees only the log of the first
N epochs (the N-epoch run: ``check_truncation.py``). All measurements use held-out
*test* cells that no training saw (``bench_data.TEST_FRACTION``), with the model in
evaluation mode, at the state after epoch N unless said otherwise.

Measured quantities (``measure.py``; nats per cell unless per dimension):

- ``L(e)``, the held-out loss after epoch e = 0 (untrained), 1, ..., 2N: the mean
  over test cells of NLL(x | z) + beta * KL(q(z|x) || N(0, I)), one z per cell drawn
  with the same noise at every epoch; beta is the run's *target* KL weight (the end
  of any warm-up) in the per-cell-sum convention (a per-element-mean loss has
  beta * n_genes / n_latent). This is the objective the run was set to minimise.
- rate R = mean over test cells of KL(q(z|x) || N(0, I)) summed over dimensions
  (R >= I(x; z), so a small rate bounds the information z carries about a cell).
- KL per dimension, and the active dimensions: mean KL above 0.01 nats.
- decoder use dNLL = mean over test cells of NLL(x | posterior mean of a random other
  test cell) - NLL(x | own posterior mean); each cell keeps its own library size.
- probe: 5-fold cross-validated logistic regression of the labels (PBMC
  ``bulk_labels``, CITE-seq ``batch``) from the test cells' posterior means, balanced
  accuracy; classes with fewer than 10 test cells are left out; chance is
  1 / (classes kept). No probe for unlabelled data or too few cells (geuvadis: 17).

Classes, in priority order (the first that holds is the true class):

1. ``diverged``: a loss of the log's last epoch is non-finite, or a parameter is
   non-finite at epoch N, or L(N) is non-finite (the model's outputs overflow), or
   L(N) > L(0): training made the model worse on held-out cells than the untrained
   one, a finite divergence (revision 2, below).

Revision 2 (after the second held-out corpus was scored, before the third was
trained): the last condition of ``diverged`` was added. Until then a finite explosion
counted by whatever came next, usually ``collapse`` through dNLL < 0 (a decoder doing
worse on a cell's own latent than on another's, because the encoder's outputs were
blown up); a model worse than untrained has moved away from what it was set to
minimise, which is what diverging means. It changes 3 of the 172 earlier runs
(``retruth.py`` lists them) and was fixed before ``heldout3_plan.py``'s runs were
trained.
2. ``collapse``: R < log 2 (less than one binary split of information), or no active
   dimension, or dNLL < log 2 (the decoder ignores z), or the probe's balanced accuracy
   is within 0.05 of chance.
3. ``overfitting``: with best = min L(1..N) and threshold = best + 0.1 * (L(1) - best),
   L(N) > threshold and every L(N+1..2N) > threshold (it stays there).
4. ``not_converged``: training on lowers the held-out loss by more than 10 % of what
   the first N epochs achieved: L(N) - L(2N) > 0.1 * (L(0) - L(N)).
5. ``healthy``: none of these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["TRUE_CLASSES", "Truth", "classify"]

#: True classes in priority order (the first that holds wins), then healthy.
TRUE_CLASSES = ("diverged", "collapse", "overfitting", "not_converged", "healthy")

#: One binary split of information, nats (log 2): below it the latent, or the
#: decoder's use of it, cannot tell two kinds of cell apart.
MIN_INFORMATION_NATS = math.log(2)
#: A dimension is active when its mean KL exceeds this, nats (reference document:
#: KL "≈ 0" means the posterior equals the prior; the brief's 0.01 nats).
ACTIVE_DIM_KL_NATS = 0.01
#: A probe within this much balanced accuracy of chance finds nothing in the latent.
PROBE_CHANCE_MARGIN = 0.05
#: Fraction of the earlier held-out drop that counts as "still improving" or
#: "risen above the best" (issue 18 brief).
FURTHER_DROP_FRACTION = 0.10
OVERFIT_RISE_FRACTION = 0.10


@dataclass(frozen=True)
class Truth:
    """The true class and every condition behind it (``conditions``: name -> held)."""

    true_class: str
    conditions: dict[str, bool]
    reasons: tuple[str, ...]


def _finite(values: Sequence[float]) -> bool:
    return all(math.isfinite(v) for v in values)


def _diverged(last_logged_finite: bool, params_finite: bool, loss_n: float,
              loss_0: float) -> list[str]:
    reasons = []
    if not last_logged_finite:
        reasons.append("non-finite loss in the log's last epoch")
    if not params_finite:
        reasons.append("non-finite parameters at epoch N")
    if not math.isfinite(loss_n):
        reasons.append(f"held-out loss at epoch N is {loss_n}")
    elif loss_n > loss_0:
        reasons.append(f"held-out loss at epoch N {loss_n:.6g} above the untrained model's "
                       f"{loss_0:.6g}")
    return reasons


def _collapsed(rate: float, kl_per_dim: Sequence[float], delta_nll: float,
               probe: float | None, chance: float | None) -> list[str]:
    reasons = []
    if rate < MIN_INFORMATION_NATS:
        reasons.append(f"rate {rate:.3g} nats < log 2")
    n_active = sum(kl > ACTIVE_DIM_KL_NATS for kl in kl_per_dim)
    if n_active == 0:
        reasons.append(f"no active dimension of {len(kl_per_dim)}")
    if delta_nll < MIN_INFORMATION_NATS:
        reasons.append(f"decoder use dNLL {delta_nll:.3g} nats < log 2")
    if probe is not None and chance is not None and probe - chance < PROBE_CHANCE_MARGIN:
        reasons.append(f"probe balanced accuracy {probe:.3f} within 0.05 of chance {chance:.3f}")
    return reasons


def _overfitting(loss: Sequence[float], n: int) -> list[str]:
    best = min(loss[1 : n + 1])
    threshold = best + OVERFIT_RISE_FRACTION * (loss[1] - best)
    later = loss[n + 1 : 2 * n + 1]
    if loss[n] > threshold and all(v > threshold for v in later):
        return [f"held-out loss {loss[n]:.6g} at epoch N above best {best:.6g} + 10% of the "
                f"drop from epoch 1 ({threshold:.6g}); min of epochs N+1..2N {min(later):.6g}"]
    return []


def _not_converged(loss: Sequence[float], n: int) -> list[str]:
    achieved, further = loss[0] - loss[n], loss[n] - loss[2 * n]
    if further > FURTHER_DROP_FRACTION * achieved:
        return [f"epochs N+1..2N lower the held-out loss by {further:.6g}, more than 10% of "
                f"the {achieved:.6g} of epochs 1..N"]
    return []


def classify(*, heldout_loss: Sequence[float], n_logged: int, last_logged_finite: bool,
             params_finite: bool, rate_nats: float, kl_per_dim_nats: Sequence[float],
             delta_nll_nats: float, probe_balanced_accuracy: float | None,
             probe_chance: float | None) -> Truth:
    """The true class of one run from its measurements (definitions: module docstring).

    ``heldout_loss`` holds L(0..2N), nats per cell; ``n_logged`` is N.
    """
    if len(heldout_loss) != 2 * n_logged + 1:
        raise ValueError(f"need L(0..2N) = {2 * n_logged + 1} values, got {len(heldout_loss)}")
    found = {"diverged": _diverged(last_logged_finite, params_finite, heldout_loss[n_logged],
                                   heldout_loss[0])}
    measurable = not found["diverged"]
    found["collapse"] = _collapsed(rate_nats, kl_per_dim_nats, delta_nll_nats,
                                   probe_balanced_accuracy, probe_chance) if measurable else []
    curve_ok = measurable and _finite(heldout_loss[: n_logged + 1])
    found["overfitting"] = _overfitting(heldout_loss, n_logged) if curve_ok else []
    found["not_converged"] = _not_converged(heldout_loss, n_logged) if curve_ok else []
    true_class = next((c for c in TRUE_CLASSES[:-1] if found[c]), "healthy")
    return Truth(true_class, {c: bool(r) for c, r in found.items()},
                 tuple(r for c in TRUE_CLASSES[:-1] for r in found[c]))
