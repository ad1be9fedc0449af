# mlplatform — `make run` starts a dev server, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000
# More workers than cores keeps the CPU busy while daphne/browser tests wait on I/O.
TEST_WORKERS ?= 3
# Some machines' pip configuration names local indexes that do not exist; pip warns per package.
PIP_NOISE := ^WARNING: Location .* is ignored

.PHONY: venv run migrate test lint format screenshots clean bench bench-pg bench-mlflow bench-fasttrackml bench-compare soak

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing requirements into $(VENV) (first run takes a minute)..."
	@set -o pipefail; $(PY) -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | { grep -v "$(PIP_NOISE)" || true; }
	@set -o pipefail; $(PY) -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | { grep -v "$(PIP_NOISE)" || true; }
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

migrate: venv
	@DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput

run: migrate
	@DEBUG=$${DEBUG:-1} $(PY) manage.py ensure_admin
	@echo "Serving on http://$(HOST):$(PORT)/  (admin: http://$(HOST):$(PORT)/admin/, API docs: http://$(HOST):$(PORT)/api/v1/docs/)"
	@DEBUG=$${DEBUG:-1} exec $(VENV)/bin/daphne --access-log /dev/null -b $(HOST) -p $(PORT) mlplatform.asgi:application

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	@bash scripts/ensure-chromium
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --cov --cov-report=term --cov-fail-under=90 $(PYTEST_ARGS)

# Seeds a throwaway SQLite database, starts daphne and saves PNGs of the main pages in docs/screenshots/.
screenshots: venv
	@bash scripts/ensure-chromium
	$(PY) tests/browser/screenshots.py

clean:
	rm -rf $(VENV) var .coverage htmlcov

# Benchmarks (bench/README.md). bench-pg/-mlflow/-fasttrackml need PostgreSQL (and Redis for ours) on
# 127.0.0.1; override with BENCH_PG_URL / BENCH_REDIS_URL. Extra options: BENCH_ARGS="--size tiny".
BENCH_VENVS := var/bench
MLFLOW_BENCH := $(BENCH_VENVS)/mlflow-venv/.installed-3.17.2
FML_BENCH := $(BENCH_VENVS)/fml-venv/.installed-0.6.0

$(MLFLOW_BENCH):
	@mkdir -p $(BENCH_VENVS) && $(PYTHON) -m venv $(BENCH_VENVS)/mlflow-venv
	@echo "Installing stock mlflow 3.17.2 into $(BENCH_VENVS)/mlflow-venv (a few minutes)..."
	@$(BENCH_VENVS)/mlflow-venv/bin/pip install -q --disable-pip-version-check mlflow==3.17.2 psycopg2-binary==2.9.13
	@touch $@

$(FML_BENCH):
	@mkdir -p $(BENCH_VENVS) && $(PYTHON) -m venv $(BENCH_VENVS)/fml-venv
	@echo "Installing FastTrackML 0.6.0 into $(BENCH_VENVS)/fml-venv..."
	@$(BENCH_VENVS)/fml-venv/bin/pip install -q --disable-pip-version-check fasttrackml==0.6.0
	@touch $@

bench: venv
	$(PY) -m bench.run --target ours --backend sqlite --seed store $(BENCH_ARGS)

bench-pg: venv
	$(PY) -m bench.run --target ours --backend pg --seed store $(BENCH_ARGS)

bench-mlflow: venv $(MLFLOW_BENCH)
	$(PY) -m bench.run --target mlflow --backend pg --seed store $(BENCH_ARGS)
	$(PY) -m bench.report --backend pg --targets ours,mlflow

bench-fasttrackml: venv $(FML_BENCH)
	$(PY) -m bench.run --target fasttrackml --backend pg $(BENCH_ARGS)
	$(PY) -m bench.report --backend pg --targets ours,fasttrackml

bench-compare: venv
	$(PY) -m bench.report --backend pg

# Soak (docs/RELIABILITY.md): mixed traffic through daphne for SOAK_SECONDS (10 min) against DATABASE_URL
# (a scratch mlplatform_soak database on that server, else a throwaway SQLite file) and REDIS_URL when set.
SOAK_SECONDS ?= 600
soak: venv
	$(PY) -m tests.resilience.soak --duration $(SOAK_SECONDS) --json var/soak.json
