import re
from pathlib import Path

from genevae.history.logline import format_epoch_line

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "healthy_bulk_cvae.log"
LINE = re.compile(
    r"^epoch \d{3,} \| train loss=-?\d+\.\d{4} recon=-?\d+\.\d{4} kl=-?\d+\.\d{4}"
    r"( \| val loss=-?\d+\.\d{4})?$"
)


def test_formats_the_reference_first_line_exactly():
    record = {"epoch": 1, "train_loss": 0.8684, "train_recon": 0.8440, "train_kl": 0.0488,
              "val_loss": 0.7531}
    assert format_epoch_line(record) == (
        "epoch 001 | train loss=0.8684 recon=0.8440 kl=0.0488 | val loss=0.7531"
    )


def test_every_reference_line_matches_the_format():
    for line in REFERENCE.read_text().splitlines():
        assert LINE.match(line), line


def test_large_sums_and_missing_validation():
    line = format_epoch_line({"epoch": 1234, "train_loss": 1523.25, "train_recon": 1500.0,
                              "train_kl": 23.25})
    assert LINE.match(line)
    assert "val" not in line
