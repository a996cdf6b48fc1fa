"""Hypothesis fuzzing of the readers a user feeds files to: CSV/TSV matrices and configs.

Each input either parses or raises the documented GenevaeError; nothing else escapes.
(The log readers are fuzzed in test_readers.py.)
"""

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genevae.config import build_config, load_config
from genevae.data.io import read
from genevae.errors import GenevaeError

FUZZ = settings(max_examples=150, deadline=None)
_NAMES = itertools.count()

cell = st.one_of(st.integers(-5, 1000).map(str), st.floats(allow_nan=True).map(str),
                 st.text(alphabet="abcXYZ-_.;, \"'\t", max_size=6), st.just(""))
rows = st.lists(st.lists(cell, min_size=1, max_size=6), min_size=1, max_size=8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """One folder for the module's inputs, under pytest's temporary root (which pytest
    prunes), not one new folder in /tmp per example."""
    return tmp_path_factory.mktemp("fuzz")


def _write(folder: Path, suffix: str, text: str | bytes) -> Path:
    path = folder / f"input{next(_NAMES)}{suffix}"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@FUZZ
@given(rows=rows, separator=st.sampled_from([",", "\t"]))
def test_csv_reader_parses_or_explains(folder, rows, separator):
    text = "\n".join(separator.join(row) for row in rows) + "\n"
    path = _write(folder, ".csv" if separator == "," else ".tsv", text)
    try:
        adata = read(path)
    except GenevaeError:
        return
    assert adata.n_obs >= 1 and adata.n_vars >= 1


@FUZZ
@given(data=st.binary(max_size=400))
def test_csv_reader_on_arbitrary_bytes(folder, data):
    try:
        read(_write(folder, ".csv", data))
    except GenevaeError:
        pass


toml_value = st.one_of(st.integers(-3, 1000), st.floats(allow_nan=False, allow_infinity=False),
                       st.booleans(), st.text(max_size=8), st.lists(st.text(max_size=4), max_size=3))
sections = st.dictionaries(
    st.sampled_from(["data", "model", "objective", "train", "modle", "extra"]),
    st.dictionaries(st.sampled_from(["n_latent", "beta", "epochs", "likelihood", "kl_schedule",
                                     "batch_size", "lr", "n_latnet", "condition_keys", "dropout"]),
                    toml_value, max_size=4),
    max_size=4,
)


@FUZZ
@given(sections=sections)
def test_config_loader_parses_or_explains(folder, sections):
    path = _write(folder, ".json", json.dumps(sections))
    try:
        loaded = load_config(path)
    except GenevaeError:
        return
    build_config(loaded)  # what loads also builds


@FUZZ
@given(text=st.text(max_size=300))
def test_config_loader_on_arbitrary_toml_text(folder, text):
    try:
        load_config(_write(folder, ".toml", text))
    except GenevaeError:
        pass
