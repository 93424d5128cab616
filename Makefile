# erp-gateway — the commands a new user needs. Only Python >= 3.11 and make are required:
# the first run creates .tools/ (uv) and .venv/ (the project, from the committed uv.lock).

PYTHON ?= python3
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

# embedded default: SQLite file + in-process delivery, demo config with local simulators
RUN_DB ?= sqlite+aiosqlite:///./var/gateway.db
PORT ?= 8000

.PHONY: help env chromium run test test-fast lint audit fmt bench bench-scale clean

help:
	@echo "make run    start the gateway with the demo config (SQLite, simulators) on :$(PORT)"
	@echo "make test   run the whole test suite"
	@echo "make lint   ruff (format check + lint), mypy and the import graph"
	@echo "make audit  known vulnerabilities in the locked dependencies"
	@echo "make bench  ingest and end-to-end benchmarks on Postgres + Redis (docs/benchmarks.md)"
	@echo "make bench-scale  50,000-SKU reconciliation, memory over 100,000 orders, queries at 10M rows (docs/benchmarks-scale.md; ~50 min)"

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.8"

# byte-compiled at install: the tests start hundreds of Python processes (servers, workers,
# simulators), and where PYTHONDONTWRITEBYTECODE is set (CI images, containers) each one
# compiled every module it imported again: 4.3 s to import the app instead of 1.5 s
$(BIN)/erp-gateway: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

env: $(BIN)/erp-gateway

run: env
	$(BIN)/erp-gateway demo --port $(PORT)

# the console's browser tests drive Debian's chromium: installed where apt-get can (as root);
# elsewhere they are skipped with a one-line reason
chromium:
	@command -v chromium >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 \
	  || [ "$$(id -u)" != 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y \
	  --no-install-recommends chromium || true

# the suite runs in parallel (pytest-xdist; TEST_WORKERS=0 runs it in one process), one
# worker per core: on 2 cores ~7.5 min (10.3 before the byte-compiling; 17 in one
# process). Two per core was no faster and starved the timing tests of an arq worker's poll
# pace. Each worker has a Postgres database and a Redis db of its own; an idle worker takes
# tests queued for a busy one (worksteal), so a few long end-to-end tests do not leave a core
# idle at the end
TEST_WORKERS ?= auto

# the project's own modules byte-compiled first, for the same reason (under a second)
COMPILE := $(BIN)/python -m compileall -q -j 0 app kernel connectors simulators bench tests

test: env chromium
	$(COMPILE)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

test-fast: env
	$(COMPILE)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not e2e" $(PYTEST_ARGS)

lint: env
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy kernel app connectors simulators
	$(BIN)/lint-imports

# known vulnerabilities in the locked dependencies (PyPI's advisory data); a package it cannot
# look up is listed as skipped, which does not fail the run
audit: env
	$(UV) export --frozen --no-hashes --no-emit-project --format requirements-txt > .tools/requirements.txt
	$(BIN)/pip-audit -r .tools/requirements.txt --no-deps --disable-pip --progress-spinner off

fmt: env
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# installs wrk and nginx-light with apt when missing; BENCH_ARGS="--help" lists the settings
bench: env
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-scale: env
	$(BIN)/python -m bench.scale $(BENCH_ARGS)

clean:
	rm -rf .venv .tools var .pytest_cache .mypy_cache .ruff_cache
