import numpy as np
import pandas as pd
import torch
from conftest import tiny_config

from genevae.runfolder import RunFolder
from genevae.services.fitted import encode, load_fitted, save_fitted
from genevae.services.fitting import fit
from genevae.services.runfiles import prepare_run_folder


def test_seeded_run_reproduces_its_history_exactly(tiny_sc):
    config = tiny_config(data={"condition_keys": ("batch",)})
    _, first = fit(tiny_sc, config, echo=lambda line: None)
    _, second = fit(tiny_sc, config, echo=lambda line: None)
    pd.testing.assert_frame_equal(first.history.frame.drop(columns=["seconds", "cells_per_second"]),
                                  second.history.frame.drop(columns=["seconds", "cells_per_second"]))


def test_one_reference_line_per_epoch(tiny_sc, tmp_path):
    lines = []
    config = tiny_config()
    run = prepare_run_folder(tmp_path / "run", overwrite=False)
    fit(tiny_sc, config, run, echo=lines.append)
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert len(epoch_lines) == 3
    assert run.log.read_text().splitlines() == epoch_lines
    assert run.best_checkpoint.exists() and run.last_checkpoint.exists()


def test_history_keeps_both_conventions(tiny_sc):
    config = tiny_config(objective={"loss_reduction": "mean", "beta": 0.5})
    fitted, result = fit(tiny_sc, config, echo=lambda line: None)
    frame = result.history.frame
    n_genes = fitted.model.n_genes
    np.testing.assert_allclose(frame["train_recon"], frame["train_recon_sum"] / n_genes, rtol=1e-6)
    np.testing.assert_allclose(frame["val_kl"], frame["val_kl_sum"] / 4, rtol=1e-6)
    np.testing.assert_allclose(frame["val_loss"], frame["val_recon"] + 0.5 * frame["val_kl"], rtol=1e-6)
    dims = frame[[f"val_kl_dim_{j:03d}" for j in range(4)]].sum(axis=1)
    np.testing.assert_allclose(dims, frame["val_kl_sum"], rtol=1e-5)


def test_checkpoint_round_trip_gives_identical_latent(tiny_sc, tmp_path):
    config = tiny_config(data={"condition_keys": ("batch",)})
    fitted, _ = fit(tiny_sc, config, echo=lambda line: None)
    save_fitted(fitted, tmp_path / "model.pt")
    loaded = load_fitted(tmp_path / "model.pt")
    before, after = encode(fitted, tiny_sc), encode(loaded, tiny_sc)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])


def test_absurd_learning_rate_stops_with_divergence(tiny_sc, tmp_path):
    config = tiny_config(train={"lr": 1e6, "epochs": 20, "grad_clip": 0.0})
    run = prepare_run_folder(tmp_path / "run", overwrite=False)
    _, result = fit(tiny_sc, config, run, echo=lambda line: None)
    assert result.stop_reason == "diverged"
    assert result.diverged_epoch is not None and result.diverged_epoch < 20
    assert RunFolder(tmp_path / "run").last_checkpoint.exists()
    state = torch.load(run.last_checkpoint, weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
