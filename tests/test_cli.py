"""The command line end to end: simulate -> train -> embed, with real files."""

import json
import re
from pathlib import Path

import anndata as ad
import pytest

from genevae.cli import main
from genevae.errors import EXIT_VERDICT

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


@pytest.mark.parametrize(("flags", "status"), [([], 0),
                                                (["--fail-on", "posterior_collapse"], EXIT_VERDICT)])
def test_the_command_exits_with_mains_status_and_all_its_output(flags, status):
    """``cli.run`` leaves with os._exit: the status is main's and a pipe gets every line."""
    import subprocess
    import sys

    log = Path(__file__).parent / "fixtures" / "logs" / "run_collapse_huge_beta.log"
    done = subprocess.run([sys.executable, "-m", "genevae", "diagnose", str(log), "--json",
                           *flags], capture_output=True, text=True)
    assert done.returncode == status, done.stderr
    assert json.loads(done.stdout)["verdict"] == "posterior_collapse"


# -- genevae diagnose ------------------------------------------------------------------

def test_diagnose_reference_log_prints_the_four_checks(capsys):
    from conftest import REFERENCE_LOG

    assert main(["diagnose", str(REFERENCE_LOG)]) == 0
    out = capsys.readouterr().out
    for line in ("✅ Reconstruction improving (0.84 → 0.24)",
                 "✅ KL increasing (0.05 → 0.33) — latent space is being used",
                 "✅ KL in healthy range (0.1–1.0)", "✅ No posterior collapse",
                 "Conclusion: Training is healthy."):
        assert line in out


def test_diagnose_json_and_fail_on(capsys):
    import json
    from pathlib import Path

    log = Path(__file__).parent / "fixtures" / "logs" / "run_collapse_huge_beta.log"
    assert main(["diagnose", str(log), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "posterior_collapse"
    assert main(["diagnose", str(log), "--fail-on", "diverged,posterior_collapse"]) == 1
    assert main(["diagnose", str(log), "--fail-on", "diverged"]) == 0
    capsys.readouterr()
    assert main(["diagnose", str(log), "--fail-on", "colapse"]) == 2
    assert "Choose from" in capsys.readouterr().err


def test_diagnose_unreadable_log_and_bad_map(tmp_path, capsys):
    log = tmp_path / "notes.txt"
    log.write_text("nothing to see here\n")
    assert main(["diagnose", str(log)]) == 2
    assert "no training history found" in capsys.readouterr().err
    assert main(["diagnose", str(log), "--map", "recon"]) == 2
    assert "QUANTITY=COLUMN" in capsys.readouterr().err
