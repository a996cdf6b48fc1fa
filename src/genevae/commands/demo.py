"""``genevae demo``: simulate the reference design, train the reference preset, diagnose."""

from __future__ import annotations

from pathlib import Path

from genevae.commands.simulate import simulate_to_files
from genevae.commands.train import RunResult, train_run
from genevae.config import apply_preset, build_config
from genevae.services.echo import Echo, print_line

__all__ = ["DEMO_CONDITIONS", "run_demo"]

#: The demo's model: the reference preset, conditioned like the reference cVAE.
DEMO_CONDITIONS = ("tissue", "disease", "batch")


def run_demo(out: Path, epochs: int = 30, echo: Echo = print_line, report: bool = True) -> RunResult:
    """Simulate the reference design, train the reference preset on it, diagnose."""
    echo(f"simulating bulk RNA-seq (reference design) into {out / 'data'}")
    paths = simulate_to_files("bulk", out / "data")
    sections = apply_preset("reference")
    sections["data"] = {"path": str(paths[0].resolve()), "condition_keys": DEMO_CONDITIONS}
    sections["train"]["epochs"] = epochs
    config = build_config(sections, where="demo")
    return train_run(config, out / "run", overwrite=True, echo=echo, report=report)
