import json

import pytest

from genevae.config import (
    PRESETS,
    RunConfig,
    apply_preset,
    build_config,
    config_to_dict,
    config_to_toml,
    load_config,
)
from genevae.errors import GenevaeError


def test_toml_round_trip(tmp_path):
    config = build_config({
        "data": {"path": "x.h5ad", "condition_keys": ["tissue", "batch"]},
        "model": {"likelihood": "zinb", "n_latent": 12},
        "objective": {"beta": 0.25, "kl_schedule": "cyclical"},
        "train": {"epochs": 3, "lr": 1e-4},
    })
    path = tmp_path / "config.toml"
    path.write_text(config_to_toml(config))
    assert build_config(load_config(path)) == config


def test_json_config(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"model": {"n_latent": 5}}))
    assert build_config(load_config(path)).model.n_latent == 5


def test_unknown_key_names_nearest_valid_one(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[model]\nn_latnet = 5\n")
    with pytest.raises(GenevaeError, match=r"n_latnet.*Did you mean 'n_latent'"):
        load_config(path)


def test_unknown_section(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[modle]\nn_latent = 5\n")
    with pytest.raises(GenevaeError, match=r"modle.*'model'"):
        load_config(path)


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("objective", {"beta": -1.0}, "beta"),
        ("model", {"n_latent": 0}, "n_latent"),
        ("model", {"likelihood": "poisson"}, "likelihood"),
        ("train", {"batch_size": 0}, "batch_size"),
        ("train", {"lr": 0.0}, "lr"),
        ("data", {"val_fraction": 1.5}, "val_fraction"),
        ("objective", {"loss_reduction": "median"}, "loss_reduction"),
        ("model", {"decoder_dropout": 1.0}, "decoder_dropout"),
    ],
)
def test_invalid_values_are_named(section, values, message):
    with pytest.raises(GenevaeError, match=message):
        build_config({section: values})


def test_scvi_preset_matches_scvi_tools_training():
    """scvi-tools' DecoderSCVI is built with dropout_rate=0 (its encoder uses 0.1), and it
    clips no gradients."""
    config = build_config(apply_preset("scvi"))
    assert (config.model.dropout, config.model.decoder_dropout) == (0.1, 0.0)
    assert config.train.grad_clip == 0.0  # Lightning's gradient_clip_val is None in scvi-tools


def test_reference_preset_matches_the_reference_run():
    config = build_config(apply_preset("reference"))
    assert (config.model.n_latent, config.model.n_hidden, config.model.n_layers) == (64, 512, 1)
    assert config.model.gaussian_variance == "fixed" and config.model.likelihood == "gaussian"
    assert config.objective.beta == 0.5 and config.objective.loss_reduction == "mean"
    assert (config.train.epochs, config.train.batch_size) == (30, 64)


def test_presets_are_valid_and_dict_round_trips():
    for name in PRESETS:
        config = build_config(apply_preset(name))
        assert build_config(config_to_dict(config)) == config
    assert build_config({}) == RunConfig()


def test_unknown_preset():
    with pytest.raises(GenevaeError, match="preset"):
        apply_preset("referense")
