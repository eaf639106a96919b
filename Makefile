# gpuledger: `make run` serves the dashboard on the demo fleet (or your data), `make test` tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
DEV_STAMP := $(VENV)/.dev-installed-$(shell cat requirements.txt requirements-dev.txt requirements-ray.txt requirements-lake.txt pyproject.toml | cksum | cut -d' ' -f1)
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test test-dates lint format bench screenshots emulators clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python requirements.txt pyproject.toml
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps -e .
	touch $@

$(DEV_STAMP): $(STAMP) requirements-dev.txt requirements-ray.txt requirements-lake.txt
	$(PIP) install -r requirements-dev.txt
	touch $@

# `make run PORT=8600` serves the dashboard on another port.
run: $(STAMP)
	$(BIN)/gpuledger run --dashboard $(if $(PORT),--port $(PORT))

test: $(DEV_STAMP)
	$(BIN)/python -m pytest

# The date-sensitive tests at several pinned dates and in Europe/Berlin (tests/clock.py CHECK_DATES).
test-dates: $(DEV_STAMP)
	$(BIN)/python -m pytest -m date_sensitive --pinned-dates -q

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python scripts/check_function_length.py

format: $(DEV_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Azurite (npm) for the Azure pull tests, into .tools/npm (they are skipped, saying so, without it).
AZURITE_VERSION := 3.37.0
emulators:
	@test -x .tools/npm/node_modules/.bin/azurite-blob || npm install --prefix .tools/npm \
	  --no-save --no-package-lock --no-audit --no-fund azurite@$(AZURITE_VERSION)

bench: $(DEV_STAMP)
	$(BIN)/python -m benchmarks.run

screenshots: $(DEV_STAMP)
	$(BIN)/python -m pytest -m browser tests/dashboard/test_browser.py --screenshots docs

clean:
	rm -rf $(VENV) data reports .pytest_cache .ruff_cache .mypy_cache
