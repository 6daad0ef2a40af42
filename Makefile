# The two commands of the README:  `make up`  runs the CRM;  `make test`  runs every test.
# Both create the virtual environment and install the project on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: up test lint unit schemas bench clean tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local,test]'
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/crm up

test: $(STAMP) tools lint
	$(BIN)/python -m pytest

# promtool (Debian's prometheus package) checks deploy/prometheus in the tests.
tools:
	@command -v promtool >/dev/null || { \
	  echo "installing promtool (Debian package prometheus)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy contracts services crm tests

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

schemas: $(STAMP)
	$(BIN)/python -m contracts.jsonschema
	$(BIN)/python -m contracts.asyncapi

bench: $(STAMP)
	$(BIN)/crm bench projection-latency --count 1000

clean:
	rm -rf $(VENV) .crm .pytest_cache .mypy_cache .ruff_cache
