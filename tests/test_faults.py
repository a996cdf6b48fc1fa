"""Faults lose nothing: SIGKILL then --resume, SIGTERM, divergence (issue 7).

Each test runs the real CLI in a subprocess on a small simulated dataset.
"""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from genevae.data.io import write_h5ad
from genevae.data.simulate import simulate_sc

TIMING_COLUMNS = ["seconds", "cells_per_second"]
TRAIN = ["--likelihood", "nb", "--condition", "batch", "--n-latent", "4", "--n-hidden", "64",
         "--batch-size", "16", "--epochs", "6", "--seed", "3", "--no-report"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("faults") / "cells.h5ad"
    write_h5ad(simulate_sc(n_cells=3000, n_genes=200, n_cell_types=3, seed=5), path)
    return path


def _genevae(*args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "genevae", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _run(*args):
    process = _genevae(*args)
    out, _ = process.communicate(timeout=600)
    return process.returncode, out


def _wait_for_epoch(process, epoch: int) -> list[str]:
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith(f"epoch {epoch:03d} |"):
            return lines
    raise AssertionError("".join(lines))


def _history(run):
    return pd.read_csv(run / "history.csv").drop(columns=TIMING_COLUMNS)


def _weights(run):
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    run = tmp_path_factory.mktemp("whole") / "run"
    status, out = _run("train", "--data", data, *TRAIN, "--out", run)
    assert status == 0, out
    return run


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(data, uninterrupted, tmp_path):
    run = tmp_path / "run"
    process = _genevae("train", "--data", data, *TRAIN, "--out", run)
    _wait_for_epoch(process, 2)
    time.sleep(0.3)  # into epoch 3
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert len(_history(run)) in (2, 3)
    status, out = _run("train", "--resume", run, "--no-report")
    assert status == 0, out
    assert "resuming" in out
    pd.testing.assert_frame_equal(_history(run), _history(uninterrupted))
    resumed, whole = _weights(run), _weights(uninterrupted)
    for name, tensor in whole.items():
        torch.testing.assert_close(resumed[name], tensor, rtol=0, atol=0)
    assert len((run / "train.log").read_text().splitlines()) == 6


def test_sigterm_writes_checkpoint_and_history_and_prints_the_resume_command(data, tmp_path):
    run = tmp_path / "run"
    process = _genevae("train", "--data", data, *TRAIN, "--out", run)
    _wait_for_epoch(process, 1)
    time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 1
    assert f"genevae train --resume {run}" in out
    assert (run / "checkpoints" / "last.pt").is_file()
    assert len(_history(run)) >= 1
    assert "Traceback" not in out


def test_absurd_learning_rate_stops_keeps_the_checkpoint_and_diagnoses(data, tmp_path):
    run = tmp_path / "run"
    status, out = _run("train", "--data", data, *TRAIN, "--lr", "1e6", "--grad-clip", "0",
                       "--out", run)
    assert status == 1
    assert "stopped: the loss became non-finite in epoch" in out
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    diagnosis = (run / "diagnosis.txt").read_text()
    assert "❌" in diagnosis and "diverged" in diagnosis.lower()
    assert "--lr" in diagnosis  # the fix names the learning rate
