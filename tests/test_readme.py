"""The README documents what the code does: set-up commands and the threshold table."""

import re
from pathlib import Path

from genevae.diagnosis import thresholds
from genevae.diagnosis.codes import FINDING_CODES

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_readme_opens_with_the_two_setup_commands():
    commands = re.findall(r"^    (make \w+)", README, re.M)
    assert commands[:2] == ["make demo", "make test"]


def test_every_threshold_is_in_the_readme_table_with_its_value():
    for name in thresholds.__all__:
        row = next((line for line in README.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, name
        value = getattr(thresholds, name)
        numbers = value if isinstance(value, tuple) else (value,)
        cell = row.split("|")[2]
        shown = {float(n) for n in re.findall(r"\d+(?:\.\d+)?", cell)}
        assert {float(n) for n in numbers} <= shown, (name, row)


def test_every_finding_code_is_listed():
    for code in FINDING_CODES:
        assert f"`{code}`" in README, code
