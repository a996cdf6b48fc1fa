"""``python -m genevae``."""

from genevae.cli import run

run()
