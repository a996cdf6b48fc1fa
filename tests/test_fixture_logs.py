"""Every reader and every verdict, on logs of real training runs.

The ``run_*`` logs were written by ``tests/fixtures/make_run_logs.py``: small genevae
runs with settings that provoke each problem, saved in the formats other tools write
(reference text, Keras ``fit()`` output and ``history.history``, scvi-tools
``history_``, Lightning ``metrics.csv``, genevae ``history.csv``). The expectations
below follow from the settings, not from the engine's output.
"""

from pathlib import Path

import pytest

from genevae.diagnosis.engine import diagnose
from genevae.diagnosis.findings import Severity
from genevae.history.readers import read_history

LOGS = Path(__file__).parent / "fixtures" / "logs"
COLLAPSE = {"posterior_collapse", "late_collapse"}

# file -> (acceptable verdicts, codes that must warn or fail)
EXPECTED = {
    "run_healthy_reference_bulk.log": ({"healthy"}, set()),
    "run_healthy_nb_sc.csv": ({"healthy"}, set()),
    "run_healthy_keras_json_sc.json": ({"healthy"}, set()),
    "run_cyclical_healthy.csv": ({"healthy"}, set()),
    # β = 200 per cell: KL costs more than any gene it could explain.
    "run_collapse_huge_beta.log": ({"posterior_collapse"}, {"posterior_collapse"}),
    # The reference's real-data failure: NB, mean reduction, β 0.5, latent 32.
    "run_collapse_mean_reduction_nb.txt": (COLLAPSE, set()),
    # A linear warm-up to β = 400: KL grows while β is small, then dies at full β.
    "run_late_collapse_warmup_to_huge_beta.csv": (COLLAPSE, set()),
    # β = 100 per cell, logged to TensorBoard as Lightning names the scalars.
    "run_collapse_beta_100_tensorboard.tb": ({"posterior_collapse"}, {"posterior_collapse"}),
    # 72 training cells, two hidden layers of 512, no dropout, 300 epochs.
    "run_overfitting_tiny_data_big_decoder.json": ({"overfitting"}, {"overfitting",
                                                                      "train_val_gap"}),
    # lr 50: the first epoch is non-finite.
    "run_diverged_absurd_lr.log": ({"diverged"}, {"diverged"}),
    # lr 0.02 without clipping: the loss jumps between epochs, and the summed KL (n_latent
    # unknown to the log) stays at 0.02-0.3 nats per cell: below log 2 the latent holds
    # less than one binary split of the cells (rate ≥ I(x; z)), collapse (issue 18, point 1).
    "run_unstable_high_lr.txt": ({"posterior_collapse"}, {"posterior_collapse", "unstable"}),
    # 8 epochs at lr 2e-4: still falling fast, so not converged (issue 18, point 3).
    "run_not_converged_few_epochs.csv": ({"not_converged"}, {"not_converged"}),
    # scvi-tools' default 400-epoch warm-up in a 20-epoch run: KL never judged at full β.
    "run_warmup_unfinished_scvi_default.csv": ({"healthy"}, {"kl_warmup"}),
    # 2 latent dimensions for 5 factors at β 1: each carries several nats, above the
    # reference's red-flag 2.0 per dimension (issue 18, point 4).
    "run_kl_far_from_prior_small_latent.csv": ({"kl_range"}, {"kl_range"}),
    # 48 latent dimensions for 5 factors.
    "run_partial_collapse_wide_latent.csv": ({"healthy"}, {"partial_collapse"}),
    # Mean reduction with β 2 on 200 genes and 8 latent dimensions: effective β 50.
    "run_effective_beta_mean_reduction_gaussian.csv": ({"posterior_collapse"},
                                                       {"effective_beta", "posterior_collapse"}),
}


def test_there_are_at_least_fifteen_real_run_logs():
    assert len(EXPECTED) >= 15
    assert {p.name for p in LOGS.glob("run_*")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_verdict_and_key_findings(name):
    verdicts, codes = EXPECTED[name]
    diagnosis = diagnose(read_history(LOGS / name))
    assert diagnosis.verdict in verdicts
    raised = {f.code for f in diagnosis.findings if f.severity.is_problem}
    assert codes <= raised, raised
    if diagnosis.verdict == "healthy":
        assert not any(f.severity is Severity.FAIL for f in diagnosis.findings)


def test_every_reader_meets_a_real_run():
    sources = {read_history(LOGS / name).meta.source for name in EXPECTED}
    assert sources == {"text", "keras", "scvi-tools", "lightning", "genevae", "tensorboard"}


def test_healthy_runs_have_no_failing_problem_and_sick_ones_never_read_healthy():
    for name, (verdicts, _) in EXPECTED.items():
        verdict = diagnose(read_history(LOGS / name)).verdict
        if "healthy" not in verdicts:
            assert verdict != "healthy", name
