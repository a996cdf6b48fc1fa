"""``genevae train --auto-fix``: apply the ranked remedy, retrain, until the run is healthy.

:func:`next_remedy` is a pure function of the configuration and the diagnosis: it
returns the next configuration to try and a sentence saying why, or None when the run
is healthy or no remedy is left. The remedies, in the order the findings rank them:

1. the per-cell sum convention, when the mean convention inflates β (``effective_beta``);
2. a linear KL warm-up, for collapse under a constant β;
3. a lower β (÷ 4), for collapse that a warm-up did not prevent;
4. free bits (0.1 nats per dimension), for collapse or partial collapse;
5. a weaker decoder (half the width), when collapse persists;
6. a lower learning rate (÷ 10), after divergence.

Every attempt is retrained from scratch: each remedy changes the objective or the
optimiser from the first step, so no earlier checkpoint is a sound start.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from genevae.config import RunConfig, config_to_toml
from genevae.diagnosis import codes
from genevae.diagnosis.findings import Diagnosis
from genevae.diagnosis.thresholds import EFFECTIVE_BETA_WARN
from genevae.files import atomic_write_text
from genevae.report.attempts import write_attempts_report
from genevae.runfolder import AttemptsFolder
from genevae.services.echo import Echo
from genevae.services.runfiles import read_diagnosis

__all__ = ["next_remedy", "auto_fix_run", "COLLAPSE_VERDICTS",
           "AUTO_FIX_WARMUP_EPOCHS", "AUTO_FIX_FREE_BITS"]

#: Verdicts that call for a remedy. Partial collapse below a tenth of the dimensions is
#: reported as posterior_collapse (latent_findings.NEAR_COLLAPSE_ACTIVE_SHARE).
COLLAPSE_VERDICTS = (codes.POSTERIOR_COLLAPSE, codes.LATE_COLLAPSE, codes.UNINFORMATIVE_LATENT)
AUTO_FIX_WARMUP_EPOCHS = 10  # the reference document's kl_annealing_schedule default
AUTO_FIX_FREE_BITS = 0.1  # genevae choice: the healthy band's lower edge, nats per dimension


def _needs_remedy(diagnosis: Diagnosis) -> str | None:
    verdict = diagnosis.verdict
    if verdict == codes.DIVERGED:
        return "diverged"
    if verdict in COLLAPSE_VERDICTS:
        return "collapse"
    return None


def next_remedy(config: RunConfig, diagnosis: Diagnosis) -> tuple[RunConfig, str] | None:
    """The configuration of the next attempt and why, or None (healthy, or out of remedies)."""
    problem = _needs_remedy(diagnosis)
    if problem is None:
        return None
    objective, model, train = config.objective, config.model, config.train
    if problem == "diverged":
        return (replace(config, train=replace(train, lr=train.lr / 10)),
                f"training diverged: lower the learning rate {train.lr:g} → {train.lr / 10:g}")
    effective = objective.beta
    if objective.loss_reduction == "mean":
        effective = next((f.evidence.get("effective_beta") for f in diagnosis.findings
                          if f.code == codes.EFFECTIVE_BETA), None) or objective.beta
    if objective.loss_reduction == "mean" and effective > EFFECTIVE_BETA_WARN:
        return (replace(config, objective=replace(objective, loss_reduction="sum")),
                f"the mean convention makes β act as {effective:.3g} on the true ELBO: "
                "use the per-cell sum (--loss-reduction sum)")
    if objective.kl_schedule == "constant" and objective.kl_target is None:
        return (replace(config, objective=replace(objective, kl_schedule="linear",
                                                  warmup_epochs=AUTO_FIX_WARMUP_EPOCHS)),
                f"collapse under a constant β: warm the KL up over {AUTO_FIX_WARMUP_EPOCHS} epochs")
    if objective.beta > 0.1:
        return (replace(config, objective=replace(objective, beta=objective.beta / 4)),
                f"collapse despite the warm-up: lower β {objective.beta:g} → {objective.beta / 4:g}")
    if objective.free_bits < AUTO_FIX_FREE_BITS:
        return (replace(config, objective=replace(objective, free_bits=AUTO_FIX_FREE_BITS)),
                f"collapse at a low β: give each dimension {AUTO_FIX_FREE_BITS:g} free bits")
    if model.n_hidden > 16:
        return (replace(config, model=replace(model, n_hidden=model.n_hidden // 2)),
                f"collapse persists: weaken the decoder (--n-hidden {model.n_hidden // 2})")
    return None


def auto_fix_run(
    config: RunConfig, out: str | Path, overwrite: bool, max_attempts: int, echo: Echo,
    train: Callable[..., Any],
) -> Any:
    """Train ``config`` in ``OUT/attempt_1``; while :func:`next_remedy` finds one, retrain
    in ``OUT/attempt_<k>`` (at most ``max_attempts``). Writes ``OUT/attempts.json`` and
    ``OUT/report.html`` comparing the attempts; returns the last attempt's result.

    ``train(config, folder, overwrite, echo)`` runs one complete attempt (with its report).
    """
    folders = AttemptsFolder(Path(out))
    attempts: list[dict[str, Any]] = []
    result = None
    for k in range(1, max_attempts + 1):
        run = folders.attempt(k)
        echo(f"\nauto-fix: attempt {k} of at most {max_attempts} in {run.root}")
        result = train(config, run.root, overwrite, echo)
        diagnosis = read_diagnosis(run)
        remedy = next_remedy(config, diagnosis)
        attempts.append({"attempt": k, "folder": run.root.name, "verdict": diagnosis.verdict,
                         "healthy": diagnosis.healthy, "remedy_next": remedy[1] if remedy else None})
        if remedy is None:
            break
        echo(f"auto-fix: {diagnosis.verdict} — {remedy[1]}")
        config = remedy[0]
    atomic_write_text(folders.json, json.dumps(attempts, indent=2) + "\n")
    atomic_write_text(folders.config, config_to_toml(config))
    report = write_attempts_report(folders.root, attempts)
    final = attempts[-1]
    echo(f"\nauto-fix: final attempt {final['attempt']} is {final['verdict']}; report: {report}")
    return result
