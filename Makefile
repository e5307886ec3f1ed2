# The two commands of README.md. Both set up everything first (scripts/setup.sh).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run test test-unit test-integration test-e2e test-browser bench migrate

setup:
	@./scripts/setup.sh

run: setup
	$(PY) -m deploy.devstack

test: setup
	$(PY) -m tests.run_all

test-unit: setup
	$(PY) -m pytest tests/unit

test-integration: setup
	$(PY) -m pytest tests/integration

test-e2e: setup
	$(PY) -m pytest tests/e2e

test-browser: setup
	$(PY) -m pytest tests/browser

bench: setup
	$(PY) -m bench.rpc
	$(PY) -m bench.eventstore
