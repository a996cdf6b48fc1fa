"""Reading a log and diagnosing it never loads torch (issue 20).

``genevae diagnose`` reads any tool's log; it must start fast and run where torch is not
installed. Each test runs in a fresh interpreter, so nothing imported by other tests
counts. The package under test is this checkout's ``src``, put first on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REFERENCE_LOG

SRC = Path(__file__).resolve().parents[1] / "src"


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          timeout=300)


def _is_torch(module: str) -> bool:
    return module == "torch" or module.startswith("torch.")


def _importtime_lines(importtime: str) -> list[tuple[int, str]]:
    """(depth, module) of each ``python -X importtime`` line (stderr), in the order printed.

    Lines read ``import time: <self us> | <cumulative us> | <indent><module>``; a module
    is printed after the modules it imported, which are indented two spaces deeper.
    """
    rows = []
    for line in importtime.splitlines():
        if line.startswith("import time:") and "imported package" not in line:
            name = line.rsplit("|", 1)[1]
            rows.append(((len(name) - len(name.lstrip())) // 2, name.strip()))
    return rows


def imported_modules(importtime: str) -> list[str]:
    """Module names of ``-X importtime`` output, each once, in import order."""
    return list(dict.fromkeys(name for _, name in _importtime_lines(importtime)))


def import_chain(importtime: str, module: str) -> list[str]:
    """``[module, its importer, that one's importer, ...]`` for the first import of ``module``."""
    rows = _importtime_lines(importtime)
    at = next(i for i, (_, name) in enumerate(rows) if name == module)
    depth, chain = rows[at][0], [module]
    for level, name in rows[at + 1:]:
        if level < depth:
            depth = level
            chain.append(name)
    return chain


def test_importtime_output_is_read():
    text = ("import time: self [us] | cumulative | imported package\n"
            "import time:       186 |        186 |   _io\n"
            "import time:      9000 |      90000 |       torch._C\n"
            "import time:     90091 |    6286073 |     torch\n"
            "some other line\n"
            "import time:       500 |    6286573 |   genevae.workflow\n"
            "import time:       100 |        100 |   _io\n")
    assert imported_modules(text) == ["_io", "torch._C", "torch", "genevae.workflow"]
    assert import_chain(text, "torch") == ["torch", "genevae.workflow"]
    assert import_chain(text, "torch._C") == ["torch._C", "torch", "genevae.workflow"]


def test_genevae_diagnose_on_the_command_line_loads_no_torch():
    done = _python("-X", "importtime", "-m", "genevae", "diagnose", str(REFERENCE_LOG))
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "Training is healthy" in done.stdout, done.stdout
    modules = imported_modules(done.stderr)
    assert modules, "no -X importtime output on stderr"
    torch = [m for m in modules if _is_torch(m)]
    if torch:
        first = "torch" if "torch" in torch else torch[0]
        pytest.fail(
            f"genevae diagnose imported {len(torch)} torch modules, through "
            f"{' <- '.join(import_chain(done.stderr, first))}.\ngenevae modules imported: "
            f"{', '.join(m for m in modules if m.startswith('genevae'))}", pytrace=False)


def test_read_history_and_diagnose_from_python_load_no_torch():
    script = f"""
import json, sys
import genevae
from genevae.history.readers import read_history

diagnosis = genevae.diagnose(read_history({str(REFERENCE_LOG)!r}))
print(json.dumps({{
    "verdict": diagnosis.verdict,
    "torch": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")),
    "genevae": sorted(m for m in sys.modules if m.startswith("genevae")),
}}))
"""
    done = _python("-c", script)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["verdict"] == "healthy"
    if result["torch"]:
        pytest.fail(f"{len(result['torch'])} torch modules loaded; genevae modules loaded: "
                    f"{', '.join(result['genevae'])}", pytrace=False)


def test_train_without_report_loads_neither_torch_dynamo_nor_sklearn(sc_h5ad, tmp_path):
    """``torch.optim`` imports ``torch._dynamo`` (1.0-1.4 s); the flat-parameter trainer
    steps with :class:`~genevae.train.adamw.FlatAdamW` instead (issue 19). The command
    also flushes subnormal floats to zero on every thread (``flush_denormals``)."""
    script = f"""
import json, sys
from genevae.cli import main

status = main(["-q", "train", "--data", {str(sc_h5ad)!r}, "--out", {str(tmp_path / "run")!r},
               "--epochs", "2", "--no-report"], own_process=True)  # as the command runs it
import torch
# subnormal products, computed on every OpenMP thread: all flushed to 0 (FTZ) since main
subnormal = int((torch.full((1 << 21,), 1e-30) * 1e-10).count_nonzero())
print(json.dumps({{"status": status, "subnormal": subnormal, "loaded": sorted(
    m for m in sys.modules if m in ("torch._dynamo", "sklearn", "matplotlib.pyplot"))}}))
"""
    done = _python("-c", script)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result == {"status": 0, "subnormal": 0, "loaded": []}


def test_main_called_from_python_leaves_subnormals_alone(sc_h5ad, tmp_path):
    """The control of the check above, and what a notebook or a test sees: ``main``
    called from Python does not change the process's floating-point mode."""
    script = f"""
import torch
from genevae.cli import main

status = main(["-q", "train", "--data", {str(sc_h5ad)!r}, "--out", {str(tmp_path / "run")!r},
               "--epochs", "1", "--no-report"])
print(status, int((torch.full((1 << 21,), 1e-30) * 1e-10).count_nonzero()))
"""
    done = _python("-c", script)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["0", str(1 << 21)]


def test_evaluation_fits_its_baseline_without_torch_dynamo(sc_h5ad, tmp_path):
    """The held-out check fits the no-latent baseline with the trainer's FlatAdamW, not
    ``torch.optim`` (which imports ``torch._dynamo``, 1.0-1.6 s of every evaluation)."""
    script = f"""
import json, sys
from genevae.cli import main

status = main(["-q", "train", "--data", {str(sc_h5ad)!r}, "--out", {str(tmp_path / "run")!r},
               "--epochs", "2"])
print(json.dumps({{"status": status, "dynamo": "torch._dynamo" in sys.modules}}))
"""
    done = _python("-c", script)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == {"status": 0, "dynamo": False}
