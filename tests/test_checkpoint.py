import pickle
import threading

import pytest
import torch

from genevae.errors import GenevaeError
from genevae.train.checkpoint import BackgroundWriter, load_checkpoint, save_checkpoint, snapshot


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


def test_snapshot_does_not_follow_later_changes():
    weights = torch.zeros(4)
    records = [{"epoch": 1}]
    state = {"model": {"w": weights}, "trainer": {"records": records}, "n": 3, "pair": (1, 2)}
    copy = snapshot(state)
    weights += 1
    records.append({"epoch": 2})
    assert torch.equal(copy["model"]["w"], torch.zeros(4))
    assert copy["trainer"]["records"] == [{"epoch": 1}]
    assert copy["n"] == 3 and copy["pair"] == (1, 2)


def test_background_writes_land_in_order_and_flush_waits(tmp_path):
    writer = BackgroundWriter()
    gate = threading.Event()
    order = []

    def write(name):
        gate.wait(5)
        order.append(name)

    for name in ("a", "b", "c"):
        writer.submit(write, name)
    assert order == []  # nothing waited for the writes
    gate.set()
    writer.flush()
    assert order == ["a", "b", "c"]
    path = tmp_path / "last.pt"
    writer.submit(save_checkpoint, path, {"epoch": 7, "w": torch.ones(3)})
    writer.flush()
    assert load_checkpoint(path)["epoch"] == 7


def test_a_failed_background_write_is_raised_not_lost(tmp_path):
    writer = BackgroundWriter()

    def fail():
        raise OSError("disk full")

    writer.submit(fail)
    with pytest.raises(OSError, match="disk full"):
        writer.flush()
    writer.submit(fail)
    done = threading.Event()
    writer.submit(done.set)
    done.wait(5)
    with pytest.raises(OSError, match="disk full"):  # raised by the next submit
        writer.submit(lambda: None)
