"""The command line end to end: simulate -> train -> embed, with real files."""

import re

import anndata as ad
import pytest

from genevae.cli import main

LINE = re.compile(r"^epoch \d{3} \| train loss=\S+ recon=\S+ kl=\S+ \| val loss=\S+$")
RUN_FILES = ("config.toml", "history.csv", "curves.png", "diagnosis.txt",
             "checkpoints/best.pt", "checkpoints/last.pt")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    assert main(["simulate", "sc", "--out", str(root / "data"), "--n-cells", "300",
                 "--n-genes", "80"]) == 0
    data = root / "data" / "sc_counts.h5ad"
    status = main(["-q", "train", "--data", str(data), "--likelihood", "zinb", "--condition", "batch",
                   "--n-latent", "4", "--n-hidden", "32", "--epochs", "3", "--batch-size", "64",
                   "--out", str(root / "run")])
    return root, data, status


def test_train_writes_a_complete_run_folder(trained, capsys):
    root, _, status = trained
    assert status == 0
    for name in RUN_FILES:
        assert (root / "run" / name).is_file(), name
    log = (root / "run" / "train.log").read_text().splitlines()
    assert len(log) == 3 and all(LINE.match(line) for line in log)
    assert "Conclusion:" in (root / "run" / "diagnosis.txt").read_text()


def test_embed_writes_latent_means(trained, tmp_path):
    root, data, _ = trained
    out = tmp_path / "embedded.h5ad"
    assert main(["embed", str(root / "run"), "--data", str(data), "--out", str(out)]) == 0
    assert ad.read_h5ad(out).obsm["X_genevae"].shape == (300, 4)


def test_reusing_a_run_folder_needs_overwrite(trained, capsys):
    root, data, _ = trained
    status = main(["train", "--data", str(data), "--epochs", "1", "--out", str(root / "run")])
    assert status == 2
    assert "--overwrite" in capsys.readouterr().err


def test_python_m_genevae_runs():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "genevae", "--version"], capture_output=True,
                          text=True, check=True)
    assert done.stdout.startswith("genevae ")
