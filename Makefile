# The two commands of the README:  `make up`  runs the CRM;  `make test`  runs every test.
# Both create the virtual environment and install the project on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements/development.lock

.PHONY: up test lint unit schemas docs bench fuzz clean tools lock

# Versions come from the lock file (hashes checked); the project itself is installed
# editable on top, without resolving anything again.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# After changing the dependencies in pyproject.toml: pin them again (uv, in its own venv).
lock:
	@test -x $(VENV)-uv/bin/uv || { $(PYTHON) -m venv $(VENV)-uv && $(VENV)-uv/bin/pip install --quiet uv; }
	$(VENV)-uv/bin/uv pip compile pyproject.toml --extra local --extra test \
	  --python-version 3.11 --generate-hashes -q -o requirements/development.lock
	$(VENV)-uv/bin/uv pip compile pyproject.toml \
	  --python-version 3.11 --generate-hashes -q -o requirements/production.lock

up: $(STAMP)
	$(BIN)/crm up

# The fault-injection tests (tests/faults/: the short form of `crm soak`, about four
# minutes) run after the others, alone: their services and steady load would slow the
# latency checks of the other tests, and their recovery times are the machine's own.
test: $(STAMP) tools lint
	$(BIN)/python -m pytest -m "not faults"
	$(BIN)/python -m pytest -m faults -n 0

# promtool checks deploy/prometheus in the tests. It comes from Debian's prometheus
# package, unpacked into the venv without installing it (no root needed); where that is
# not possible the tests say so and skip those checks, except in CI (CI=true), which
# requires them.
tools: $(STAMP)
	@command -v promtool >/dev/null || test -x $(BIN)/promtool || \
	  local/promtool.sh $(VENV) || echo "promtool unavailable: the checks of deploy/prometheus will be skipped"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy contracts services crm local bench tests

# in this process: the unit tests take seconds, less than starting xdist workers
unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -n 0

schemas: $(STAMP)
	$(BIN)/python -m contracts.jsonschema
	$(BIN)/python -m crm.asyncapi

# The documentation's generated tables (permissions, routes, configuration, metrics,
# event types), between their markers in README.md and docs/*.md.
docs: $(STAMP)
	$(BIN)/python -m local.reference
	$(BIN)/python -m crm.cli topics acls --output deploy/kubernetes/kafka-access.sh

bench: $(STAMP)
	$(BIN)/crm bench projection-latency --count 1000

# Fuzz every service of a running `make up` from its OpenAPI document, with every
# schemathesis check and phase (examples, coverage, fuzzing, stateful; settings in
# local/schemathesis.toml): no answer may be a 5xx, break its schema, or carry an
# undocumented status or content type. Then the hostile requests of the tests
# (tests/support/hostile.py: control characters, out-of-range moments, forged cursors
# and tokens, Last-Event-ID) go to every parameter of every service: each must be a 4xx
# saying why. Schemathesis lives in its own environment (its pins are its own business).
FUZZ_VENV := .venv-fuzz
FUZZ_EXAMPLES ?= 50
FUZZ_PORTS ?= 8001 8002 8003 8004
fuzz: $(STAMP)
	@test -f .crm/tokens.env || { echo "start the CRM first: CRM_RATE_LIMIT_PER_MINUTE=0 CRM_RATE_LIMIT_ANONYMOUS_PER_MINUTE=0 make up"; exit 2; }
	@test -x $(FUZZ_VENV)/bin/st || { $(PYTHON) -m venv $(FUZZ_VENV) && \
	  $(FUZZ_VENV)/bin/python -m pip install --quiet 'schemathesis>=4.3,<5'; }
	. .crm/tokens.env && failed=0 && for port in $(FUZZ_PORTS); do \
	  $(FUZZ_VENV)/bin/st --config-file local/schemathesis.toml run \
	    http://127.0.0.1:$$port/openapi.json -H "Authorization: Bearer $$TOKEN" \
	    -n $(FUZZ_EXAMPLES) --phases=examples,coverage,fuzzing,stateful --checks all \
	    || failed=1; done; \
	$(BIN)/python -m tests.support.hostile --token "$$TOKEN" --secret-file .crm/auth-secret \
	  $(foreach port,$(FUZZ_PORTS),http://127.0.0.1:$(port)) && exit $$failed

clean:
	rm -rf $(VENV) $(VENV)-uv $(FUZZ_VENV) .schemathesis .crm .pytest_cache .mypy_cache .ruff_cache
