# sabrkit: two commands on a fresh machine with Python 3.11 and the package registries.
#   make demo   set up .venv, then rebuild the synthetic SABR cohort pipeline with `dvc repro`
#   make test   set up .venv, then run the test suite (slow end-to-end tests included)
#   make repro  `dvc repro` from any shell, no activated venv needed (stage commands find .venv's python)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sabrkit-installed
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: demo test test-fast setup lock clean-data bench help repro exp-run exp-show

help:
	@echo "make demo   - install, then run the pipeline on the synthetic cohort (dvc repro)"
	@echo "make test   - install, then run every test"
	@echo "make bench  - run the benchmarks (writes benchmarks/results/*.json)"
	@echo "make repro  - dvc repro without activating .venv (ARGS='experiment@radiomic_spca' ...)"
	@echo "make exp-run S='experiments/radiomic_spca.yaml:validation.n_repeats=2' - a DVC experiment"
	@echo "make exp-show - the experiments table with a short column set"

setup: $(STAMP)

# pyradiomics 3.0.1 compiles against the installed numpy, so numpy goes first and pyradiomics
# is built without build isolation. torch is pinned to the CPU build (2.13.0).
$(STAMP): pyproject.toml requirements.lock setup.py
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "sabrkit needs Python 3.11, found " + sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q "pip==26.3" "setuptools==84.2.1" "wheel==0.48.0"
	$(PIP) install -q -c requirements.lock numpy
	$(PIP) install -q -c requirements.lock --no-build-isolation pyradiomics
	$(PIP) install -q -c requirements.lock torch
	$(PIP) install -q -c requirements.lock -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sabrkit demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n 2

bench: $(STAMP)
	@for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

# Regenerate the exact pins from the current environment.
lock: $(STAMP)
	$(PIP) freeze --exclude-editable | sed 's/+cpu//' | { echo "# Exact pins for every package sabrkit installs (pip constraints file)."; echo "# Regenerate with \`make lock\` after changing pyproject.toml dependencies."; cat; } > requirements.lock

# DVC with the project's virtualenv first on PATH: stage commands (`python pipelines/...`) then
# import this checkout's sabrkit from any shell, activated or not.
RUN_IN_VENV := PATH="$(CURDIR)/$(BIN):$$PATH" VIRTUAL_ENV="$(CURDIR)/$(VENV)"
# The headline columns of `dvc exp show` (the metrics files hold ~100 numbers per experiment).
EXP_KEEP ?= ^(Experiment|Created)$$|(summary\.(uno_c|harrell_c|ibs|auc_24)_mean|comparison\.delta_uno_c_mean|validation\.n_repeats)$$

repro: $(STAMP)
	$(RUN_IN_VENV) $(BIN)/dvc repro $(ARGS)

exp-run: $(STAMP)
	$(RUN_IN_VENV) $(BIN)/dvc exp run $(if $(S),-S '$(S)') $(ARGS)

exp-show: $(STAMP)
	$(BIN)/dvc exp show --only-changed --drop '.*' --keep '$(EXP_KEEP)' $(ARGS)
