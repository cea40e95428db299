# Two commands matter: `make demo` and `make test`. Both create the virtualenv and install the
# pinned dependencies first (once; again only when pyproject.toml or constraints.txt change).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test browser ui dashboard dotenv bench db-url db-stop clean

$(STAMP): pyproject.toml constraints.txt
	@echo "==> creating $(VENV) and installing pinned dependencies (first run: ~2 minutes)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,k8s]'
	@touch $(STAMP)

install: $(STAMP)

demo: install  ## backfill the bundled real sample through every asset and print a summary
	$(BIN)/breakout demo

# The dashboard's browser test drives Debian's chromium (headless, through Playwright with the
# system executable: nothing is downloaded from Playwright's CDN).
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || ! command -v sudo >/dev/null || echo sudo)
browser:  ## Debian's chromium for the dashboard's browser test (installed when missing)
	@command -v chromium >/dev/null || $(SUDO) apt-get install -y chromium \
		|| ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

test: install browser  ## static checks (ruff lint + format, mypy on core/ and ml/), then the whole suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n 3 --durations=15

# `dg dev` reads the project from [tool.dg] in pyproject.toml and the instance from .env; it
# expects the project's venv to be the active one, which VIRTUAL_ENV says without `activate`.
ui: dotenv  ## the Dagster UI on 127.0.0.1:3000, same Postgres, the demo's runs visible
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg dev -h 127.0.0.1 -p 3000

dashboard: dotenv  ## the operator dashboard (Streamlit) on 127.0.0.1:8501, same Postgres and runs
	$(BIN)/breakout dashboard

dotenv: install  ## start the embedded Postgres, write .env: plain `dagster ...` works in the root
	@$(BIN)/breakout dagster --version >/dev/null

bench: install  ## benchmarks with printed figures (bulk load, one session end to end)
	$(BIN)/python benchmarks/bench_market_data.py

db-url: install
	@$(BIN)/breakout db url

db-stop: install
	$(BIN)/breakout db stop

clean:
	-$(BIN)/breakout db stop
	rm -rf $(VENV) .pgdata .dagster_home storage .env
