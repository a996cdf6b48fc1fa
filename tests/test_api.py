"""The scverse-style Python API: read, fit, get_latent, save, load."""

import numpy as np
import pytest

import genevae
from genevae.errors import GenevaeError


def test_fit_get_latent_save_load(tiny_sc, tmp_path):
    model = genevae.GeneVAE(likelihood="nb", n_latent=3, n_hidden=16, epochs=2, batch_size=64)
    history = model.fit(tiny_sc, condition_keys=["batch"], out=tmp_path / "run")
    assert len(history) == 2
    assert model.diagnosis is not None
    latent = model.get_latent(tiny_sc)
    assert latent.shape == (tiny_sc.n_obs, 3)
    model.save(tmp_path / "model.pt")
    again = genevae.GeneVAE.load(tmp_path / "model.pt")
    np.testing.assert_array_equal(again.get_latent(tiny_sc), latent)
    from_run = genevae.GeneVAE.load(tmp_path / "run")
    assert from_run.get_latent(tiny_sc).shape == latent.shape


def test_unknown_setting_and_unfitted_model_are_explained():
    with pytest.raises(GenevaeError, match="unknown setting 'n_latnet'"):
        genevae.GeneVAE(n_latnet=3)
    with pytest.raises(GenevaeError, match="not trained yet"):
        genevae.GeneVAE().get_latent(None)


def test_read_is_public(tmp_path, tiny_sc):
    path = tmp_path / "cells.h5ad"
    tiny_sc.write_h5ad(path)
    assert genevae.read(path).shape == tiny_sc.shape


def test_diagnose_stays_callable_once_the_diagnosis_package_is_loaded(tiny_sc):
    """``genevae.diagnose`` is the function even after ``genevae.diagnosis`` is imported.

    The subpackage was once called ``genevae.diagnose``: importing it replaced the
    public function with the module, and ``genevae.diagnose(history)`` raised
    "'module' object is not callable".
    """
    import genevae.diagnosis.engine  # noqa: F401 - loads the subpackage, as fitting does

    model = genevae.GeneVAE(likelihood="nb", n_latent=2, n_hidden=16, epochs=2, batch_size=64)
    history = model.fit(tiny_sc)
    diagnosis = genevae.diagnose(history)
    assert diagnosis.verdict == model.diagnosis.verdict
    assert [f.code for f in diagnosis.findings] == [f.code for f in model.diagnosis.findings]
