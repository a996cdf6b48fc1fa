# Two entry points, each creating .venv and installing what it needs; `make bench` uses
# its own .venv-bench, with scvi-tools beside genevae.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BENCH_VENV := .venv-bench
BENCH_BIN := $(BENCH_VENV)/bin
# 1.4.2: the newest scvi-tools release that installs on Python 3.11 (issue 5).
SCVI_TOOLS := scvi-tools==1.4.2

.PHONY: demo test bench bench-diagnosis bench-diagnosis-corpus clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml setup.py src/genevae/model/_count_kernel.c | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml setup.py src/genevae/model/_count_kernel.c | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/genevae demo --out demo-run

# The report test renders report.html in Debian's headless Chromium.
CHROMIUM_INSTALL = command -v chromium >/dev/null 2>&1 || \
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(VENV)/.installed-dev
	$(CHROMIUM_INSTALL)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# torch first, then scvi-tools under a constraint that keeps that torch.
$(BENCH_VENV)/.installed: pyproject.toml setup.py src/genevae/model/_count_kernel.c benchmarks/constraints.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_BIN)/pip install --quiet --upgrade pip
	$(BENCH_BIN)/pip install --quiet torch==2.13.0
	$(BENCH_BIN)/pip install --quiet -c benchmarks/constraints.txt "$(SCVI_TOOLS)" -e .
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_BIN)/python benchmarks/bench_readers.py
	$(BENCH_BIN)/python benchmarks/bench_vs_scvi.py
	$(BENCH_BIN)/python benchmarks/bench_whole_process.py
	$(BENCH_BIN)/python benchmarks/profile_phases.py
	$(BENCH_BIN)/python benchmarks/bench_scale.py --repeats 2

# Issue 18: genevae's verdicts on the committed corpus of real training logs against the
# truth measured from each trained model (benchmarks/diagnosis/README.md). Not in CI.
bench-diagnosis: $(BENCH_VENV)/.installed
	$(BENCH_BIN)/python benchmarks/diagnosis/score.py

# Retrains every run of the corpus (about 30 minutes on one thread) and rewrites it.
bench-diagnosis-corpus: $(BENCH_VENV)/.installed
	$(BENCH_BIN)/python benchmarks/diagnosis/generate.py

# The held-out corpora (benchmarks/diagnosis/heldout*_plan.py, README there): runs the
# rules were not tuned to when they were made. bench-diagnosis-heldoutN scores one into
# heldoutN_results.md; bench-diagnosis-heldoutN-corpus retrains its runs (5-10 minutes on
# one thread) and rewrites benchmarks/diagnosis/heldoutN/.
HELDOUT_CORPORA := heldout heldout2 heldout3 heldout4 heldout5
.PHONY: $(HELDOUT_CORPORA:%=bench-diagnosis-%) $(HELDOUT_CORPORA:%=bench-diagnosis-%-corpus)
$(HELDOUT_CORPORA:%=bench-diagnosis-%): bench-diagnosis-%: $(BENCH_VENV)/.installed
	$(BENCH_BIN)/python benchmarks/diagnosis/score.py --corpus benchmarks/diagnosis/$* \
		--results benchmarks/diagnosis/$*_results.md

$(HELDOUT_CORPORA:%=bench-diagnosis-%-corpus): bench-diagnosis-%-corpus: $(BENCH_VENV)/.installed
	$(BENCH_BIN)/python benchmarks/diagnosis/generate.py --plan $* --corpus benchmarks/diagnosis/$*

clean:
	rm -rf $(VENV) $(BENCH_VENV) demo-run test-artifacts
