# make repro PAPER=heron  one paper: its stages and the summary, on every core (see README)
# make repro              every paper: prints what it will run and for how long first
# make plan [PAPER=heron] that plan only (what is out of date, the expected wall time)
# make test               the test suite (what CI runs)
# make bench              the benchmarks (installs their comparison libraries first)
# Both create .venv and install everything on first use.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
export PATH := $(BIN):$(PATH)

.PHONY: repro plan test install bench

install: $(STAMP)

# torch first and exactly (a CPU wheel; anything looser pulls a CUDA build), then the lock.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# hrlzoo/pipeline/repro.py: params checked first (exit 2), DVC decides what is out of date,
# the stages run side by side on every core (CORES=n to limit), then `dvc commit -f`.
# PAPER: its report with everything upstream, and the summary alone (not the other papers).
TARGETS := $(if $(PAPER),$(PAPER)_report --single summary)
CORES ?= 0

repro: $(STAMP)
	python -m hrlzoo.pipeline.repro --cores $(CORES) $(TARGETS)

plan: $(STAMP)
	python -m hrlzoo.pipeline.repro --dry --cores $(CORES) $(TARGETS)

test: $(STAMP)
	pytest -q

# The benchmarks' comparison libraries (transformers, trl, highway-env) stay out of the test and
# pipeline environment: Lightning's torchmetrics imports transformers whenever it is installed.
$(BENCH_STAMP): $(STAMP) requirements-bench.lock
	$(BIN)/pip install --quiet -c requirements.lock -r requirements-bench.lock
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	for b in benchmarks/*.py; do python $$b || exit 1; done
