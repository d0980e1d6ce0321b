# Two commands: `make run` (trade on paper in the Dagster UI) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 3000
HOST ?= 127.0.0.1
UV_VERSION := 0.13.9
export TRADEPIPE_HOME ?= $(CURDIR)/.tradepipe
# Small matrices: extra BLAS threads only spin against the Dagster processes on a laptop.
export OPENBLAS_NUM_THREADS ?= 1
DAGSTER_HOME_DIR := $(TRADEPIPE_HOME)/dagster

.PHONY: run test install migrate bench clean lint

# The lock file pins every package; uv installs it in seconds, pip is the fallback.
$(VENV)/.installed: requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if $(BIN)/pip install -q uv==$(UV_VERSION) 2>/dev/null; then \
		$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock && \
		$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e . ; \
	else \
		$(BIN)/pip install -q -r requirements.lock && $(BIN)/pip install -q --no-deps -e . ; \
	fi
	@touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/tradepipe db upgrade

run: migrate
	@mkdir -p $(DAGSTER_HOME_DIR)
	@cp dagster.yaml $(DAGSTER_HOME_DIR)/dagster.yaml
	@echo "tradepipe: paper trading on the $${TRADEPIPE_MARKET_SOURCE:-synthetic} market"
	@echo "tradepipe: Dagster UI at http://$(HOST):$(PORT)  (Ctrl-C stops it; 'make run' again resumes)"
	DAGSTER_HOME=$(DAGSTER_HOME_DIR) $(BIN)/dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Lint (ruff: real mistakes, not style; mypy on tradepipe/): both configured in pyproject.toml.
lint: install
	$(BIN)/ruff check tradepipe tests benchmarks
	$(BIN)/mypy

bench: install
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
