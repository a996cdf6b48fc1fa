"""The diagnosis reads histories and encoder snapshots: it never loads torch, the model,
the trainer or the data layer (STYLE, "The shape of the house"), and its modules
import each other without a circle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import genevae.diagnosis

PACKAGE = Path(genevae.diagnosis.__file__).parent
MODULES = sorted(
    "genevae." + ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    for path in PACKAGE.rglob("*.py")
)
FORBIDDEN = ("torch", "genevae.model", "genevae.train", "genevae.data")


def test_importing_every_diagnosis_module_loads_no_torch_model_train_or_data():
    code = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module(name.removesuffix('.__init__'))\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or "
        f"any(m == f or m.startswith(f + '.') for f in {FORBIDDEN!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_no_diagnosis_module_names_torch_model_train_or_data_in_an_import():
    for path in PACKAGE.rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            words = line.split()
            if words[:1] in (["import"], ["from"]) and len(words) > 1:
                module = words[1]
                assert not any(module == f or module.startswith(f + ".") for f in FORBIDDEN), (
                    path.name, line)
