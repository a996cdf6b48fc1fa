"""Issue 18: verdicts on logs of real runs that a user would otherwise have called healthy.

The scvi-tools logs were written by ``tests/fixtures/make_issue18_logs.py`` (genuine
scvi-tools 1.4.2 runs on the PBMC counts); the small-latent log by
``tests/fixtures/make_run_logs.py`` (a genevae run). The expectations follow from the
runs' settings and numbers, stated beside each.
"""

from __future__ import annotations

import math
from pathlib import Path

from conftest import REFERENCE_LOG

from genevae.diagnosis.engine import diagnose
from genevae.diagnosis.findings import Severity
from genevae.diagnosis.render import render_text
from genevae.history.readers import read_history

LOGS = Path(__file__).parent / "fixtures" / "logs"


def _diagnose(name: str):
    return diagnose(read_history(LOGS / name))


def test_summed_kl_of_a_fraction_of_a_nat_is_collapse_whatever_the_latent_size():
    """Point 1: constant KL weight 50; total KL per cell 0.91 → 0.07 nats; n_latent is not
    in the log. The rate bounds I(x; z): 0.07 nats is less than one binary split."""
    history = read_history(LOGS / "real_scvi_kl_weight_50.csv")
    assert history.meta.loss_reduction == "sum" and history.meta.n_latent is None
    assert 0.05 < history.values("train_kl")[-1] < 0.08
    diagnosis = diagnose(history)
    assert diagnosis.verdict == "posterior_collapse"
    finding = next(f for f in diagnosis.findings if f.code == "posterior_collapse")
    assert "rate ≥ I(x; z)" in finding.title and "log 2" in finding.title
    assert finding.evidence["rate_threshold"] == round(math.log(2), 6)
    # read from the validation KL (eval mode, held-out cells): 0.046 nats at the end
    assert finding.evidence["series"].startswith("val_kl")
    assert finding.evidence["information_bound"].startswith("I(x; z) ≤ 0.04")


def test_a_short_run_still_falling_is_not_converged():
    """Point 3: 5 epochs; validation loss 966 → 819, still falling 2-5% per epoch."""
    diagnosis = _diagnose("real_scvi_5_epochs.csv")
    assert diagnosis.verdict == "not_converged"
    assert not diagnosis.healthy and "not healthy" in diagnosis.conclusion
    finding = next(f for f in diagnosis.findings if f.code == "not_converged")
    assert finding.severity is Severity.FAIL and "--epochs 10" in finding.recommendation


def test_kl_in_the_red_flag_band_never_concludes_healthy():
    """Point 4: 2 latent dimensions for 5 factors carry several nats each, above the
    reference's "> 2.0: posterior far from prior"."""
    diagnosis = _diagnose("run_kl_far_from_prior_small_latent.csv")
    finding = next(f for f in diagnosis.findings if f.code == "kl_range")
    assert finding.evidence["kl_per_dim"] > 2.0 and finding.severity is Severity.FAIL
    assert diagnosis.verdict == "kl_range"
    assert "healthy" not in diagnosis.conclusion.replace("not healthy", "")


def test_notes_are_kept_apart_from_warnings():
    """Point 4: in the reference run validation sits below training (dropout): a note (ℹ️),
    not a warning, and the healthy conclusion counts only warnings."""
    diagnosis = diagnose(read_history(REFERENCE_LOG))
    note = next(f for f in diagnosis.findings if f.code == "val_below_train")
    assert note.severity is Severity.INFO and not note.severity.is_problem
    assert diagnosis.healthy and "warning" not in diagnosis.conclusion
    assert "- ℹ️ Validation below training" in render_text(diagnosis)


def test_live_and_final_verdicts_agree_on_the_mean_reduction_pbmc_run():
    """Point 2: the history of ``genevae train --data pbmc68k_reduced_counts.h5ad
    --loss-reduction mean --beta 0.5 --n-latent 32 --n-hidden 256 --n-layers 2 --epochs 50``.
    KL falls to ≈ 0 at once and crawls back only to ~0.03 per dimension (≈ 1 nat per cell in
    total): the live warning and the final verdict both say collapse, and no posterior-mean
    variance can turn that into healthy."""
    from genevae.diagnosis.live import LiveMonitor
    from genevae.history.history import History

    history = History.read_csv(LOGS / "real_genevae_mean_reduction_pbmc68k.csv")
    monitor = LiveMonitor()
    lines = []
    for n in range(1, len(history) + 1):
        lines += monitor.update(History(history.frame.iloc[:n].reset_index(drop=True),
                                        history.meta))
    assert any("Posterior collapse" in line for line in lines)
    assert not any("no longer holds" in line for line in lines)
    assert "posterior_collapse" in monitor.warned
    final = diagnose(history)
    assert final.verdict == "posterior_collapse"
    assert history.values("train_active_units")[-1] >= 15  # the variances that misled


BENCH = Path(__file__).parents[1] / "benchmarks" / "diagnosis"


def test_a_validation_loss_still_swinging_is_not_converged():
    """scvi-tools on 85 geuvadis samples, 100 epochs (benchmark corpus): the training loss
    fell smoothly (17 250 → 13 010) while the validation loss of 7 samples still swung by
    several thousand over the last fifth. Measured: training on lowered the held-out loss
    by far more than 10% of the drop, so not converged, not healthy."""
    diagnosis = diagnose(read_history(BENCH / "corpus" / "scvi_geuvadis_warm10_e100" /
                                      "history.csv"))
    assert diagnosis.verdict == "not_converged"
    finding = next(f for f in diagnosis.findings if f.code == "not_converged")
    assert finding.severity is Severity.FAIL and "has not settled" in finding.title
    assert finding.evidence["swing_share"] > finding.evidence["max_swing_share"] == 0.25
    assert finding.evidence["train_series"] == "train_loss"


def test_a_healthy_runs_noisy_validation_is_not_unsettled():
    """scvi-tools on the 400 CITE-seq cells, KL weight 25, 45 epochs (benchmark, first
    held-out corpus), measured healthy: its validation loss of a few dozen cells swings
    too, by about 4% of what training gained, far under a quarter."""
    diagnosis = diagnose(read_history(BENCH / "heldout" / "heldout_scvi_citeseq_kl25_e45" /
                                      "history_dict.json"))
    assert diagnosis.verdict == "healthy"
    finding = next(f for f in diagnosis.findings if f.code == "not_converged")
    assert finding.severity is Severity.OK
    assert 0.02 < finding.evidence["swing_share"] < 0.06
