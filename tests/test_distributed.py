"""DDP under torchrun (issue 6): two CPU processes (gloo) train one model.

Tolerance: rank 0's history must match a single-process run with the same global
batch size and seed within DDP_RELATIVE_TOLERANCE at every epoch, not exactly:

- the batches differ: each rank draws half of every global batch from its own
  contiguous shard of the training cells, while one process draws the whole batch
  from all of them (the two see different, equally valid, SGD paths);
- the random draws differ: each rank samples its own dropout masks and latent
  noise (per-rank seeds), one process draws them for the whole batch;
- the gradient is the average of two half-batch means, summed in another order.

On this data the two runs' losses differ by under 1% (about 0.5% after four
epochs); 3% leaves room for the drift of SGD while catching a real error (a rank
training on the wrong cells, unaveraged gradients, per-rank metrics in the log),
each of which moves the losses by far more.
"""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import LOSS_COLUMNS

from genevae.train.distributed import SINGLE_PROCESS, Distributed

DDP_RELATIVE_TOLERANCE = 0.03
N_EPOCHS = 4
TRAIN = ["--likelihood", "nb", "--condition", "batch", "--n-latent", "4", "--n-hidden", "32",
         "--batch-size", "64", "--epochs", str(N_EPOCHS), "--seed", "0", "--no-report",
         "--device", "cpu"]


def _run(command, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _torchrun(*args):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "-m", "genevae", "train", *map(str, args)]


def _history(run):
    return pd.read_csv(run / "history.csv")


@pytest.mark.parametrize("streaming", [[], ["--backed", "--chunk-size", "128"]],
                         ids=["in_memory", "backed"])
def test_two_processes_match_one_with_the_same_global_batch(sc_h5ad, tmp_path, streaming):
    single = tmp_path / "single"
    _run([sys.executable, "-m", "genevae", "train", "--data", str(sc_h5ad), *TRAIN, *streaming,
          "--out", str(single)], tmp_path)
    out = _run(_torchrun("--data", sc_h5ad, *TRAIN, *streaming, "--out", tmp_path / "ddp"), tmp_path)
    ddp = tmp_path / "ddp"
    # completes, rank 0 alone prints and writes
    assert sum(line.startswith("epoch ") for line in out.splitlines()) == N_EPOCHS
    assert len((ddp / "train.log").read_text().splitlines()) == N_EPOCHS
    assert (ddp / "checkpoints" / "last.pt").is_file()
    history, reference = _history(ddp), _history(single)
    assert len(history) == N_EPOCHS
    # the loss falls
    assert history["val_loss"].iloc[-1] < history["val_loss"].iloc[0]
    assert history["train_running_loss"].iloc[-1] < history["train_running_loss"].iloc[0]
    # global averages, close to the single-process run
    for column in LOSS_COLUMNS:
        np.testing.assert_allclose(history[column], reference[column],
                                   rtol=DDP_RELATIVE_TOLERANCE, err_msg=column)


def test_shards_are_equal_for_training_and_cover_every_cell_for_evaluation():
    cells = np.arange(10)
    ranks = [Distributed(rank=r, world_size=3) for r in range(3)]
    train = [rank.shard(cells, equal=True) for rank in ranks]
    assert [len(s) for s in train] == [3, 3, 3]
    assert len(np.unique(np.concatenate(train))) == 9
    evaluation = np.concatenate([rank.shard(cells, equal=False) for rank in ranks])
    assert sorted(evaluation.tolist()) == cells.tolist()
    assert SINGLE_PROCESS.shard(cells, equal=True) is cells


def test_the_global_batch_must_split_evenly():
    from genevae.errors import GenevaeError

    assert Distributed(world_size=4).local_batch_size(128) == 32
    with pytest.raises(GenevaeError, match="multiple of 3"):
        Distributed(world_size=3).local_batch_size(128)
