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

.PHONY: venv run migrate test lint format screenshots clean

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing requirements into $(VENV) (first run takes a minute)..."
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
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
	$(PY) -m pytest -n $(TEST_WORKERS) --cov --cov-report=term --cov-fail-under=90 $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var .coverage htmlcov
