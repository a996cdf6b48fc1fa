"""``genevae train``: read the data once, train, write the run folder, diagnose; with
``--auto-fix`` retrain under the ranked remedies; ``--resume`` continues a run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from genevae.config import RunConfig, build_config, config_to_toml
from genevae.diagnosis.engine import diagnose
from genevae.diagnosis.findings import Diagnosis
from genevae.errors import GenevaeError
from genevae.files import atomic_write_text
from genevae.runfolder import RunFolder
from genevae.services.echo import Echo, print_line, silent
from genevae.services.fitted import FittedModel, load_fitted
from genevae.services.fitting import check_batch_size, fit_prepared, split_cells
from genevae.services.inputs import Inputs, read_and_prepare
from genevae.services.runfiles import finish_run, prepare_run_folder, truncate_log
from genevae.train.checkpoint import load_checkpoint
from genevae.train.distributed import launch
from genevae.train.trainer import TrainingResult

if TYPE_CHECKING:
    from genevae.commands.evaluate import Evaluation

__all__ = ["FINISHED", "RunResult", "train_run", "resume_run"]

#: How a training that ran to its end stopped (the run is evaluated and reported).
FINISHED = ("completed", "early_stopping")


@dataclass
class RunResult:
    """Outcome of :func:`train_run`."""

    fitted: FittedModel
    training: TrainingResult
    diagnosis: Diagnosis
    run: RunFolder | None


def train_run(
    config: RunConfig, out: str | Path, overwrite: bool = False, echo: Echo = print_line,
    report: bool = True, auto_fix: bool = False, max_attempts: int = 3,
) -> RunResult:
    """Read ``config.data.path``, train, and write a complete run folder at ``out``.

    The data are read and validated before anything is written, and read once: a
    finished run is evaluated on the cells it was trained on. With ``report``, that
    evaluation (latent measurements, held-out evidence) runs and ``report.html`` is
    written. With ``auto_fix``, attempts go to ``out/attempt_<k>``, each with the
    remedy the previous one's diagnosis calls for (:mod:`genevae.commands.autofix`),
    until one is healthy or ``max_attempts`` are done.
    """
    if auto_fix:
        from genevae.commands.autofix import auto_fix_run

        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise GenevaeError("--auto-fix runs its attempts in one process; drop --auto-fix "
                               "under torchrun, or run it without torchrun.")
        if max_attempts < 1:
            raise GenevaeError(f"--max-attempts {max_attempts}: use at least 1.")
        out = Path(out)
        if out.is_dir() and any(out.iterdir()) and not overwrite:
            raise GenevaeError(f"--out {out} already holds files; choose another folder, or pass "
                               "--overwrite to replace them.")
        return auto_fix_run(config, out, True, max_attempts, echo,
                            lambda cfg, folder, ow, say: train_run(cfg, folder, ow, say, True))
    with launch(config.train.device) as dist:
        inputs = read_and_prepare(config)  # validated before any write
        config = inputs.config
        check_batch_size(config, len(split_cells(config, inputs.prepared)[0]))
        dist.local_batch_size(config.train.batch_size)
        if not dist.is_main:
            fitted, training = fit_prepared(inputs.preprocessor, inputs.prepared, config, None,
                                            silent, distributed=dist)
            return RunResult(fitted, training, diagnose(training.history), None)
        run = prepare_run_folder(Path(out), overwrite)
        atomic_write_text(run.config, config_to_toml(config))
        run.log.write_text("", encoding="utf-8")
        echo(f"run folder: {run.root}")
        fitted, training = fit_prepared(inputs.preprocessor, inputs.prepared, config, run, echo,
                                        distributed=dist)
        atomic_write_text(run.config, config_to_toml(fitted.config))
        return _conclude(fitted, training, run, inputs, echo, report)


def _conclude(
    fitted: FittedModel, training: TrainingResult, run: RunFolder, inputs: Inputs, echo: Echo,
    report: bool,
) -> RunResult:
    if training.stop_reason == "interrupted":
        echo(f"\ninterrupted: the state after epoch {len(training.history)} is saved in "
             f"{run.last_checkpoint}; continue with:\n  genevae train --resume {run.root}")
    elif training.stop_reason == "diverged":
        echo(f"\nstopped: the loss became non-finite in epoch {training.diverged_epoch}; the last "
             f"good checkpoint is {run.last_checkpoint}.")
    elif training.stop_reason == "early_stopping":
        echo(f"\nearly stopping: no better validation loss since epoch {training.best_epoch}.")
    if report and training.stop_reason in FINISHED and len(training.history):
        from genevae.commands.report import report_run

        echo("")
        evaluation = _evaluate(run, inputs, echo)
        echo("")
        echo(evaluation.text)
        diagnosis = evaluation.diagnosis
        echo(f"\nreport: {report_run(run.root)}")
    else:
        diagnosis = finish_run(run, training.history, echo, figures=report)
        if not report:
            echo(f"\ncurves, figures and report.html: genevae report {run.root}")
    echo(f"\nrun folder: {run.root}")
    return RunResult(fitted, training, diagnosis, run)


def _evaluate(run: RunFolder, inputs: Inputs, echo: Echo) -> Evaluation:
    """Evaluate the run's best model on the cells it was trained on: in memory, the
    prepared cells themselves (no second read of the file); streamed, the file again."""
    from genevae.commands.evaluate import evaluate_cells
    from genevae.services.evaluation import load_cells

    fitted = load_fitted(run.root)
    data = fitted.config.data
    if inputs.obs is None:
        obs, cells = load_cells(fitted, data.path, data.layer, True, True, data.chunk_size)
    else:
        obs, cells = inputs.obs, inputs.prepared
    return evaluate_cells(run, fitted, obs, cells, data.path, echo=echo, backed=data.backed)


def resume_run(run_dir: str | Path, echo: Echo = print_line, report: bool = True) -> RunResult:
    """Continue the run in ``run_dir`` from its last checkpoint."""
    run = RunFolder(Path(run_dir))
    checkpoint = load_checkpoint(run.last_checkpoint)
    config = build_config(checkpoint["config"], where=str(run.last_checkpoint))
    with launch(config.train.device) as dist:
        inputs = read_and_prepare(config)
        config = inputs.config
        done = int(checkpoint["trainer"]["epochs_done"])
        if not dist.is_main:
            fitted, training = fit_prepared(inputs.preprocessor, inputs.prepared, config, None,
                                            silent, checkpoint, distributed=dist)
            return RunResult(fitted, training, diagnose(training.history), None)
        echo(f"resuming {run.root} after epoch {done} of {config.train.epochs}")
        truncate_log(run, done)
        fitted, training = fit_prepared(inputs.preprocessor, inputs.prepared, config, run, echo,
                                        checkpoint, distributed=dist)
        return _conclude(fitted, training, run, inputs, echo, report)
