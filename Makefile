# The two commands of the README:  `make up`  runs the CRM;  `make test`  runs every test.
# Both create the virtual environment and install the project on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test lint unit schemas bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/crm up

test: $(STAMP) lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy contracts services crm tests

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

schemas: $(STAMP)
	$(BIN)/python -m contracts.jsonschema

bench: $(STAMP)
	$(BIN)/crm bench projection-latency --count 1000

clean:
	rm -rf $(VENV) .crm .pytest_cache .mypy_cache .ruff_cache
