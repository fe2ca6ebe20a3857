# Morvo. `make run` starts everything on the embedded profile; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
PORT ?= 8000
export PORT

.PHONY: run test lint bench install install-dev clean-db help

help:
	@echo "make run    start Morvo (embedded PostgreSQL, web, worker, beat) on 127.0.0.1:$(PORT)"
	@echo "make test   install the test tools and run the test suite"
	@echo "make lint   ruff and mypy"
	@echo "make bench  run the benchmarks in bench/"

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

bench: $(VENV)/.installed-dev
	$(PY) bench/platform.py
	$(PY) bench/chat.py

clean-db:
	@echo "This deletes var/pgdata (all local data)."; read -p "Type yes: " answer; [ "$$answer" = yes ] && rm -rf var/pgdata var/pgdata.users
