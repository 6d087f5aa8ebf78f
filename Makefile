# The two set-up commands of README.md: `make run` and `make test`.
# Each installs what it needs (a virtual environment, the package, Kafka's jars on first use).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint unit faults bench install clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q -e './clients/python[pytest]'
	@touch $(STAMP)

install: $(STAMP)

# Prometheus' promtool, for the alert rules' test (tests/unit/test_alert_rules.py), built from the version
# tools/promtool/go.mod pins when Go is installed; without Go (or if the build fails) that test skips.
PROMTOOL := .state/tools/promtool
$(PROMTOOL): tools/promtool/go.mod tools/promtool/go.sum
	@mkdir -p $(dir $(PROMTOOL))
	@if command -v go >/dev/null 2>&1; then \
	  (cd tools/promtool && go build -o ../../$(PROMTOOL) github.com/prometheus/prometheus/cmd/promtool) \
	    || echo "promtool did not build: the alert rules' test will be skipped" >&2; \
	else echo "no Go here: the alert rules' test will be skipped" >&2; fi

## Runs the platform: local Kafka + PostgreSQL, migrations, the three services. Ctrl-C stops everything.
run: $(STAMP)
	$(BIN)/saga run

## Runs the whole test suite (lint, types of the pure modules, unit, integration, end-to-end), then the
## Python client's and its pytest plugin's own tests, and the example shop suite on a platform the plugin
## starts (tests/e2e runs the same suite against `saga run` too). The main suite ends with its 30 slowest
## phases, so a CI log says where its time went (the budget is 25 minutes).
test: $(STAMP) lint $(PROMTOOL)
	$(BIN)/pytest --durations=30
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

## The long faults (docs/contributors/testing.md, docs/operators/reliability.md), at 300 sagas each: each
## service cut off from the broker and from its database for 30 s, a slow then lossy link, one broker of
## three cut off from the other two (root: network namespaces), the broker's disk full (root: a tmpfs), a
## service's clock an hour ahead (libfaketime), one broker of three lost for good, a refund provider failing
## and hanging. About 40 minutes on a 2-core machine.
faults: $(STAMP)
	tools/ensure-faketime.sh
	CHAOS_SAGAS=300 $(BIN)/pytest tests/chaos -m "network or long_fault" -s --timeout 1500

unit: $(STAMP)
	$(BIN)/pytest tests/unit

clean:
	rm -rf $(VENV) .state
