# The two set-up commands of README.md: `make run` and `make test`.
# Each installs what it needs (a virtual environment, the package, Kafka's jars on first use).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint unit bench install clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q -e './clients/python[pytest]'
	@touch $(STAMP)

install: $(STAMP)

## Runs the platform: local Kafka + PostgreSQL, migrations, the three services. Ctrl-C stops everything.
run: $(STAMP)
	$(BIN)/saga run

## Runs the whole test suite (lint, types of the pure modules, unit, integration, end-to-end), then the
## Python client's and its pytest plugin's own tests, and the example shop suite on a platform the plugin
## starts (tests/e2e runs the same suite against `saga run` too).
test: $(STAMP) lint
	$(BIN)/pytest
	$(BIN)/pytest clients/python/tests --timeout 600
	$(BIN)/pytest examples/shop-tests --timeout 600 -o asyncio_default_fixture_loop_scope=function

lint: $(STAMP)
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Reproduces the benchmark: its own local stack, the platform and the raw chain at each offered rate.
## Writes bench/results/ (results.json, results.md, latency.png); see bench/README.md.
bench: $(STAMP)
	$(BIN)/python -m bench

unit: $(STAMP)
	$(BIN)/pytest tests/unit

clean:
	rm -rf $(VENV) .state
