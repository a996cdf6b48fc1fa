"""report.html: self-contained, escaped, and rendered by a real browser (issues 4 and 7)."""

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from chromium import check_rendered_page, require_chromium  # noqa: E402

from genevae.errors import GenevaeError  # noqa: E402
from genevae.report.page import render_report, write_report  # noqa: E402

XSS = "<script>alert(1)</script>"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def _png(path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([1, 2, 3], [3, 1, 2])
    ax.set_title(title)
    fig.savefig(path)
    plt.close(fig)


@pytest.fixture
def run(tmp_path):
    root = tmp_path / "run"
    (root / "figures").mkdir(parents=True)
    diagnosis = {
        "verdict": "healthy", "healthy": True,
        "conclusion": "Training is healthy. The model is learning meaningful latent representations.",
        "notes": ["KL is the per-element mean."],
        "findings": [
            {"code": "kl_trend", "severity": "ok", "title": "KL increasing (0.05 → 0.33)",
             "evidence": {}, "recommendation": "", "epoch": None},
            {"code": "probe", "severity": "warn", "title": f"Probe of {XSS} below PCA",
             "evidence": {"label": XSS, "balanced": 0.41}, "recommendation": "Lower β.",
             "epoch": None},
        ],
        "fixes": ["Lower β (--beta 0.1)."],
    }
    (root / "diagnosis.json").write_text(json.dumps(diagnosis))
    _png(root / "curves.png", "curves")
    _png(root / "figures" / "kl_heatmap.png", "heatmap")
    metrics = {"latent": {"n_active": 20, "rate": 12.345678, "kl_per_dim_mean": list(range(64)),
                          XSS: 1.0},
               "traversal": {"0": [{"gene": XSS, "change": 1.5}]}}
    (root / "metrics.json").write_text(json.dumps(metrics))
    (root / "config.toml").write_text(f'[data]\npath = "{XSS}.h5ad"\n')
    (root / "history.csv").write_text("epoch,train_loss,val_loss\n1,2.0,2.1\n2,1.5,1.6\n3,1.2,1.3\n")
    return root


def test_report_is_self_contained(run):
    path = write_report(run)
    html = path.read_text()
    assert path == run / "report.html"
    assert "<script" not in html
    assert not re.search(r"https?://", html)
    assert "@import" not in html and "url(" not in html
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert html.index('id="verdict"') < html.index("Training curves") < html.index("Metrics")


def test_every_user_string_is_escaped(run):
    html = render_report(run)
    assert XSS not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5  # title, evidence, 2 metrics, config


def test_missing_diagnosis_is_explained(tmp_path):
    with pytest.raises(GenevaeError, match="no diagnosis.json"):
        write_report(tmp_path)


def test_report_renders_in_headless_chromium(run):
    require_chromium()
    check_rendered_page(write_report(run), 2, "Verdict: healthy", ARTIFACTS / "report.png")
