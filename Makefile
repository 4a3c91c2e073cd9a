# sabrkit: two commands on a fresh machine with Python 3.11 and the package registries.
#   make demo   set up .venv, then rebuild the synthetic SABR cohort pipeline with `dvc repro`
#   make test   set up .venv, then ruff + mypy, then the test suite (slow end-to-end tests included)
#   make repro  `dvc repro` from any shell, no activated venv needed (stage commands find .venv's python)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sabrkit-installed
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: demo test test-fast lint typecheck setup lock clean-data bench help repro exp-run exp-show

help:
	@echo "make demo   - install, then run the pipeline on the synthetic cohort (dvc repro)"
	@echo "make test   - install, then lint, typecheck and run every test"
	@echo "make lint   - ruff check + ruff format --check"
	@echo "make typecheck - mypy on the sabrkit package"
	@echo "make bench  - run the benchmarks (writes benchmarks/results/*.json)"
	@echo "make repro  - dvc repro without activating .venv (ARGS='experiment@radiomic_spca' ...)"
	@echo "make exp-run S='experiments/radiomic_spca.yaml:validation.n_repeats=2' - a DVC experiment"
	@echo "make exp-show - the experiments table with a short column set"

setup: $(STAMP)

# Every package comes from a hash-checked lock (pip --require-hashes), in two steps: the build
# tools and numpy first (requirements-build.lock), because pyradiomics 3.0.1 is built without
# build isolation against the installed numpy; then everything in requirements.lock; then
# sabrkit itself (editable, no dependency resolution). torch is the CPU build (2.13.0+cpu): pip
# finds it in a local wheel folder (PIP_FIND_LINKS / pip.conf find-links); see README
# "Installing" for machines without one.
$(STAMP): pyproject.toml requirements.lock requirements-build.lock setup.py
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "sabrkit needs Python 3.11, found " + sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --require-hashes --no-deps -r requirements-build.lock
	$(PIP) install -q --require-hashes --no-deps --no-build-isolation -r requirements.lock
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PIP) check
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sabrkit demo

# ruff (lint + format check) and mypy run before pytest: `make test` fails on either
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy sees the package as `sabrkit` through .typecheck/sabrkit -> ../platform (DESIGN.md)
typecheck: $(STAMP)
	@mkdir -p .typecheck && ln -sfn ../platform .typecheck/sabrkit
	MYPYPATH=.typecheck $(BIN)/mypy -p sabrkit

test: lint typecheck
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n 2

bench: $(STAMP)
	@for f in benchmarks/*.py; do case "$$f" in benchmarks/readme_table.py|benchmarks/measure.py) continue;; esac; echo "== $$f"; $(BIN)/python $$f || exit 1; done
	$(BIN)/python benchmarks/readme_table.py --write

# Regenerate the hash-pinned locks from pyproject.toml (pip-tools, a dev dependency); pins already
# in the lock are kept unless pyproject.toml needs others.
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --extra dev --no-build-isolation --strip-extras \
		--no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --no-emit-index-url --no-emit-find-links \
		-o requirements-build.lock requirements-build.in

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
