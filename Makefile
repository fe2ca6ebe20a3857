# Morvo. `make run` starts everything on the embedded profile; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
PORT ?= 8000
export PORT

.PHONY: run test lint bench eval install install-dev clean-db help

help:
	@echo "make run    start Morvo (embedded PostgreSQL, web, worker, beat) on 127.0.0.1:$(PORT)"
	@echo "make test   install the test tools and run the test suite"
	@echo "make lint   ruff and mypy"
	@echo "make bench  run the benchmarks in bench/"
	@echo "make eval   run the quality evaluations in eval/ (router intents, knowledge retrieval)"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(PY)
	$(PIP) install -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(PIP) install -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: $(VENV)/.installed
	@$(PY) -m morvo.runtime.supervisor

test: $(VENV)/.installed-dev
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

# Each benchmark is its own script; BENCH=chat runs one.
BENCH ?= platform chat brain knowledge campaigns webhooks stock_alerts
bench: $(VENV)/.installed-dev
	@set -e; for name in $(BENCH); do if [ -f bench/$$name.py ]; then echo "== bench/$$name.py"; $(PY) bench/$$name.py; fi; done

EVAL ?= router knowledge
eval: $(VENV)/.installed-dev
	@set -e; for name in $(EVAL); do if [ -f eval/$$name.py ]; then echo "== eval/$$name.py"; $(PY) eval/$$name.py; fi; done

clean-db:
	@echo "This deletes var/pgdata (all local data)."; read -p "Type yes: " answer; [ "$$answer" = yes ] && rm -rf var/pgdata var/pgdata.users
