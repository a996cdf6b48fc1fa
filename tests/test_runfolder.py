"""Where the files of a run, a sweep and an auto-fix live: one place for every name."""

from pathlib import Path

import pytest

from genevae.runfolder import AttemptsFolder, RunFolder, SweepFolder

ROOT = Path("out")


def test_a_run_writes_these_entries_in_this_order():
    assert [p.name for p in RunFolder(ROOT).entries()] == [
        "config.toml", "history.csv", "train.log", "checkpoints", "curves.png", "diagnosis.txt",
        "diagnosis.json", "metrics.json", "report.html", "figures"]
    assert all(p.parent == ROOT for p in RunFolder(ROOT).entries())


@pytest.mark.parametrize(("path", "expected"), [
    (RunFolder(ROOT).figure("kl_heatmap"), "out/figures/kl_heatmap.png"),
    (RunFolder(ROOT).best_checkpoint, "out/checkpoints/best.pt"),
    (SweepFolder(ROOT).run(0.5).root, "out/beta_0.5"),
    (SweepFolder(ROOT).run(1.0).report, "out/beta_1/report.html"),
    (SweepFolder(ROOT).run(1e-4).root, "out/beta_0.0001"),
    (SweepFolder(ROOT).json, "out/sweep.json"),
    (SweepFolder(ROOT).html, "out/sweep.html"),
    (SweepFolder(ROOT).figure("rate_distortion"), "out/figures/rate_distortion.png"),
    (AttemptsFolder(ROOT).attempt(2).diagnosis_json, "out/attempt_2/diagnosis.json"),
    (AttemptsFolder(ROOT).json, "out/attempts.json"),
    (AttemptsFolder(ROOT).config, "out/config.toml"),
    (AttemptsFolder(ROOT).report, "out/report.html"),
])
def test_paths(path, expected):
    assert path == Path(expected)
