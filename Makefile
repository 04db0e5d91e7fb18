# The two commands a new user needs:  make demo   and   make test
# Everything else installs itself on first use.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The stamp names the lock, the project and this recipe's version (bump it when the recipe changes).
STAMP := $(VENV)/.installed-$(shell (cat requirements.lock pyproject.toml; echo bytecode-1) | sha1sum | cut -c1-12)
CUSTOMERS ?= 50000
SEED ?= 42
export DO_NOT_TRACK := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help install chromium demo test test-unit test-integration lint ui bench stack-up stack-down dbt-sources clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, found {sys.version}"'
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv==0.13.8
	@echo "installing pinned dependencies (first time: a few minutes, ~3 GB) ..."
	$(BIN)/uv pip install --quiet -p $(BIN)/python --compile-bytecode -r requirements.lock
	$(BIN)/uv pip install --quiet -p $(BIN)/python --no-deps -e .
	@# Bytecode once, at install: where PYTHONDONTWRITEBYTECODE is set, every process (dbt's and Dagster's
	@# too) would otherwise compile pandas, scikit-learn and Dagster from source each time it starts.
	@$(BIN)/python -m compileall -q -j 0 $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
	  || echo "warning: some files in site-packages did not compile to bytecode (listed above); they compile at each start"
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## Create .venv and install the pinned dependencies

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium: ## Debian's chromium for the browser tests, when missing (apt; never a Playwright browser download)
	@command -v chromium >/dev/null || { echo "installing Debian's chromium for the browser tests (apt) ..."; \
	  $(SUDO) apt-get install -y -qq chromium >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }; }

demo: install ## Run the whole pipeline on the embedded default (local lake, DuckDB, in-process Dagster)
	$(BIN)/mesh demo --customers $(CUSTOMERS) --seed $(SEED)

test: install chromium ## Run every test (starts and stops the native Trino + S3 stack itself)
	$(BIN)/python -m pytest -q

lint: install ## Fast static checks: ruff, sqlfluff on sql/, the rendered access policy is current, the Dagster definitions load
	$(BIN)/ruff check .
	$(BIN)/mesh policy render --check
	cd sql && ../$(BIN)/sqlfluff lint models analyst --processes 1
	$(BIN)/dagster definitions validate -m orchestration.definitions

test-unit: install ## Unit tests only (no servers)
	$(BIN)/python -m pytest -q tests/unit

UI_PORT ?= 3000
ui: install ## Open the Dagster UI and daemon on the demo's instance (127.0.0.1 only; Ctrl-C stops it)
	exec $(BIN)/mesh ui --port $(UI_PORT) --dagster-home $(CURDIR)/.dagster_home

bench: install ## Benchmarks (BENCH_ARGS="--sections publish,s3,trino,ml"): stage times, peak memory, ratios
	$(BIN)/python -m benchmarks.run --customers $(CUSTOMERS) $(BENCH_ARGS)

stack-up: install ## Start the native stack (Trino + S3 server) as background processes
	$(BIN)/mesh stack up

stack-down: install ## Stop the native stack
	$(BIN)/mesh stack down

dbt-sources: install ## Regenerate dbt sources from the contracts
	$(BIN)/mesh dbt sources

clean: ## Remove the local lake and dbt artefacts (keeps .venv)
	rm -rf lake sql/target sql/logs .dagster_home
