# Two commands: `make run` (trade on paper in the Dagster UI) and `make test`;
# `make deploy` runs the scheduled deployment on PostgreSQL (docs/deployment.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 3000
HOST ?= 127.0.0.1
WARMUP_DAYS ?= 1
UV_VERSION := 0.13.9
export TRADEPIPE_HOME ?= $(CURDIR)/.tradepipe
# Small matrices: extra BLAS threads only spin against the Dagster processes on a laptop.
export OPENBLAS_NUM_THREADS ?= 1
# Dagster's calls to the code server (launching a run among them) give up after 60 s by default; on a
# host loaded 10-20x a launch took longer and the run failed to start. Dagster reads it from the environment only.
export DAGSTER_GRPC_TIMEOUT_SECONDS ?= 180
DAGSTER_HOME_DIR := $(TRADEPIPE_HOME)/dagster

.PHONY: run test install migrate bench clean lint deploy

# The lock file pins every package; uv installs it in seconds, pip is the fallback. Then everything is
# compiled to bytecode (uv --compile-bytecode for what it installs; compileall for the project and for a
# venv installed before, skipping what is up to date): every Dagster run is a fresh process, and one
# that must compile its imports first (PYTHONDONTWRITEBYTECODE, a read-only venv) costs ~3x the CPU.
# compileall's status is ignored: a few packages ship files for other Python versions that never load.
$(VENV)/.installed: requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if $(BIN)/pip install -q uv==$(UV_VERSION) 2>/dev/null; then \
		$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -r requirements.lock && \
		$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python --no-deps -e . ; \
	else \
		$(BIN)/pip install -q -r requirements.lock && $(BIN)/pip install -q --no-deps -e . ; \
	fi
	@$(BIN)/python -m compileall -qq -j 0 tradepipe $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') || true
	@touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/tradepipe db upgrade

# a first start on the synthetic market trades a warm-up day first (`tradepipe warmup` does
# nothing on any other market or on a book that already traded); the terminal shows the UI address,
# the trading cycles and warnings: services log at WARNING, runs at INFO, library deprecations hidden.
run: migrate
	@mkdir -p $(DAGSTER_HOME_DIR)
	@cp dagster.yaml $(DAGSTER_HOME_DIR)/dagster.yaml
	@echo "tradepipe: paper trading on the $${TRADEPIPE_MARKET_SOURCE:-synthetic} market"
	@PYTHONWARNINGS=ignore::DeprecationWarning,ignore::FutureWarning $(BIN)/tradepipe warmup --days $(WARMUP_DAYS)
	@echo "tradepipe: Dagster UI at http://$(HOST):$(PORT)  (Ctrl-C stops it; 'make run' again resumes)"
	@DAGSTER_HOME=$(DAGSTER_HOME_DIR) PYTHONWARNINGS=ignore::DeprecationWarning,ignore::FutureWarning \
		$(BIN)/dagster dev -w workspace.yaml -h $(HOST) -p $(PORT) --log-level warning

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

# --- the scheduled deployment on PostgreSQL (docs/deployment.md).
# Code server, webserver and daemon as three long-lived processes (deploy/Procfile, run by honcho,
# which also reads a .env file); PROCESSES=daemon (or code, webserver) starts just that one.
PROCESSES ?=
deploy: export DAGSTER_HOME ?= $(TRADEPIPE_HOME)/dagster-deploy
deploy: export DAGSTER_PG_HOST ?= 127.0.0.1
deploy: export DAGSTER_PG_PORT ?= 5432
deploy: export DAGSTER_PG_PASSWORD ?=
deploy: export TRADEPIPE_CODE_SERVER_HOST ?= 127.0.0.1
deploy: export TRADEPIPE_CODE_SERVER_PORT ?= 4266
deploy: export TRADEPIPE_WEBSERVER_HOST ?= $(HOST)
deploy: export TRADEPIPE_WEBSERVER_PORT ?= $(PORT)
deploy: export PATH := $(CURDIR)/$(BIN):$(PATH)
deploy: install
	@$(BIN)/honcho run $(BIN)/tradepipe deploy check
	$(BIN)/honcho run $(BIN)/tradepipe db upgrade
	@mkdir -p "$$DAGSTER_HOME" && cp deploy/dagster.yaml "$$DAGSTER_HOME/dagster.yaml"
	$(BIN)/honcho run $(BIN)/dagster instance migrate
	@echo "tradepipe: Dagster UI at http://$$TRADEPIPE_WEBSERVER_HOST:$$TRADEPIPE_WEBSERVER_PORT (Ctrl-C stops all; 'make deploy' again resumes)"
	$(BIN)/honcho -f deploy/Procfile start $(PROCESSES)
