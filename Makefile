# homelab: two commands do everything. `make plan` prints the dev stack's offline plan;
# `make test` runs the lint and the whole test suite. Both install what they need first.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev
PLAN_FLAGS ?=
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup tools plan plan-json test lint format clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt >&2
	@touch $@

# cloud-init is not on PyPI: the tests validate user data with Debian's package.
tools:
	@command -v cloud-init >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "make tools: install cloud-init (Debian/Ubuntu: apt-get install cloud-init)" >&2; exit 1; }; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends cloud-init >/dev/null; }

setup: $(VENV)/.installed tools

plan: $(VENV)/.installed
	@$(PY) -m offline --stack $(STACK) $(PLAN_FLAGS)

plan-json: $(VENV)/.installed
	@$(PY) -m offline --stack $(STACK) --json $(PLAN_FLAGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

test: setup lint
	$(PY) -m pytest

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
