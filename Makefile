# The two commands of the README: `make demo` and `make test`. Everything else is here too.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install broker mosquitto chromium postgres test demo bench lint clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,plot]'
	touch $@

install: $(STAMP)

broker:
	@bash scripts/ensure-broker.sh

mosquitto:
	@bash scripts/ensure-broker.sh --install-only

chromium:
	@bash scripts/ensure-chromium.sh

postgres:
	@bash scripts/ensure-postgres.sh

test: install broker chromium postgres
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: install mosquitto
	$(BIN)/acd demo

bench: install postgres
	$(BIN)/python -m pip install -q -e '.[bench]' || echo "bench extras unavailable: comparisons skipped"
	$(BIN)/python bench/run.py --json

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .ruff_cache
