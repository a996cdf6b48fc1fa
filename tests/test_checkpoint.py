import pickle

import pytest
import torch

from genevae.errors import GenevaeError
from genevae.train.checkpoint import load_checkpoint, save_checkpoint


def test_round_trip(tmp_path):
    state = {"model": {"w": torch.arange(4.0)}, "config": {"model": {"n_latent": 3}}, "n": 2}
    save_checkpoint(tmp_path / "a.pt", state)
    loaded = load_checkpoint(tmp_path / "a.pt")
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert loaded["config"] == state["config"]
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]  # no temporary file left


class _Payload:
    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(_Payload.marker),))


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    _Payload.marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        torch.save({"model": _Payload()}, handle, pickle_module=pickle)
    with pytest.raises(GenevaeError, match="refused"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "a.pt"
    save_checkpoint(path, {"w": torch.ones(1000)})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(GenevaeError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(GenevaeError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
