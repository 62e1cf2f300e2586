# homelab: two commands do everything. `make plan` prints the dev stack's offline plan;
# `make test` runs the lint and the whole test suite. Both install what they need first.
# `make plan-diff` compares the plan of BASE_REF (main) with the working tree's, as pull
# requests show it; `make diagram` prints the topology and `make readme` embeds it.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev
PLAN_FLAGS ?=
BENCH_FLAGS ?=
BASE_REF ?= main
MERMAID := tests/tools/mermaid
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup tools plan plan-json plan-diff diagram readme policy bench test lint format clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt >&2
	@touch $@

# cloud-init is not on PyPI: the tests validate user data with Debian's package. ssh resolves
# the setup action's SSH config (ssh -G, which connects nowhere) and jq builds the comment
# payload when the tests run the workflows' scripts, as on GitHub's runners.
tools:
	@command -v cloud-init >/dev/null && command -v ssh >/dev/null && command -v jq >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "make tools: install cloud-init, ssh and jq (Debian/Ubuntu: apt-get install cloud-init openssh-client jq)" >&2; exit 1; }; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends cloud-init openssh-client jq >/dev/null; }

# Mermaid's own parser checks the topology diagram in the tests (Node.js 18 or newer).
$(MERMAID)/node_modules/.package-lock.json: $(MERMAID)/package.json $(MERMAID)/package-lock.json
	@command -v npm >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "make setup: install Node.js and npm" >&2; exit 1; }; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
	@npm ci --prefix $(MERMAID) --no-audit --no-fund --loglevel=error >&2

setup: $(VENV)/.installed tools $(MERMAID)/node_modules/.package-lock.json

plan: $(VENV)/.installed
	@$(PY) -m offline --stack $(STACK) $(PLAN_FLAGS)

plan-json: $(VENV)/.installed
	@$(PY) -m offline --stack $(STACK) --json $(PLAN_FLAGS)

# The base revision's program, planned with this tree's engine; build/ is not tracked. A clone
# without a local branch of that name (a fresh clone, a CI checkout) uses origin's; with
# neither, one line says what to do. Expanded only when plan-diff runs.
plan_diff_base = $(or \
  $(shell git rev-parse --verify --quiet '$(BASE_REF)^{commit}' >/dev/null && echo '$(BASE_REF)'), \
  $(shell git rev-parse --verify --quiet 'origin/$(BASE_REF)^{commit}' >/dev/null && echo 'origin/$(BASE_REF)'), \
  $(error make plan-diff: no revision $(BASE_REF) here, nor origin/$(BASE_REF): run git fetch origin $(BASE_REF), or set BASE_REF=<commit>))

plan-diff: $(VENV)/.installed
	@rm -rf build/plan-diff && mkdir -p build/plan-diff/base
	@git archive --format=tar '$(plan_diff_base)' | tar -x -C build/plan-diff/base
	@$(PY) -m offline --dir build/plan-diff/base --stack $(STACK) --json > build/plan-diff/base.json
	@$(PY) -m offline --stack $(STACK) --json > build/plan-diff/head.json
	@$(PY) -m offline.diff build/plan-diff/base.json build/plan-diff/head.json \
	  --base-label '$(plan_diff_base)' --head-label "working tree"

diagram: $(VENV)/.installed
	@$(PY) -m offline --stack $(STACK) --diagram

readme: $(VENV)/.installed
	@$(PY) -m offline --stack dev --diagram --readme README.md

# The policy pack (policy/) over the offline plan, as `pulumi preview --policy-pack policy` runs it.
policy: $(VENV)/.installed
	@$(PY) -m offline.policy_pack --stack $(STACK) $(PLAN_FLAGS)

# Wall time, memory and lookups of the offline plan at 1x, 10x and 50x the dev stack (a few
# minutes); prints a Markdown table for the README.
bench: $(VENV)/.installed
	@$(PY) bench/benchmark.py $(BENCH_FLAGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

test: setup lint
	$(PY) -m pytest

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build $(MERMAID)/node_modules
