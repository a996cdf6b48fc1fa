"""How long `genevae diagnose` takes to read a 100,000-line reference-format log.

Compared in the same run with pandas reading the same numbers from a CSV, so the
ratio, not the wall clock, is what carries over between machines. Goal (issue 3):
under 2 seconds on the development machine (2 cores).

    .venv/bin/python benchmarks/bench_readers.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from genevae.history.logline import format_epoch_line
from genevae.history.readers import read_history

N_LINES = 100_000
REPEATS = 5


def _median_seconds(read) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        read()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    records = [{"epoch": e, "train_loss": 0.5 + 1 / e, "train_recon": 0.4,
                "train_kl": 0.1 + 1 / e, "val_loss": 0.6} for e in range(1, N_LINES + 1)]
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "long.log"
        log.write_text("".join(format_epoch_line(r) + "\n" for r in records))
        table = Path(folder) / "long.csv"
        pd.DataFrame(records).to_csv(table, index=False)
        read_history(log)  # imports and regex compilation
        genevae_s = _median_seconds(lambda: read_history(log))
        pandas_s = _median_seconds(lambda: pd.read_csv(table))
    print(f"{N_LINES:,} lines: genevae text reader {genevae_s:.3f} s (median of {REPEATS}), "
          f"pandas.read_csv of the same numbers {pandas_s:.3f} s, ratio {genevae_s / pandas_s:.1f}x; "
          f"goal < 2 s: {'met' if genevae_s < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
