# The two commands a new user needs: `make demo` (the main job) and `make test`.
# Both create .venv and install the project on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Official CRDs for validating custom resources: $MLP_CRD_DIR, else ../shared/crds when present,
# else the cache that `mlp crds fetch` fills.
export MLP_CRD_DIR ?= $(firstword $(wildcard $(abspath ../shared/crds)))
export PYTHONUNBUFFERED := 1

.PHONY: demo test test-fast plan lint install clean checkov system-deps

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create the virtualenv and install the project.

# The local serving path runs the real nginx and Prometheus (Debian packages; neither starts a service
# on install). Installed when missing and we may (root with apt-get); otherwise say what to install.
SYSTEM_PACKAGES_MISSING = $(strip $(if $(or $(shell command -v nginx),$(wildcard /usr/sbin/nginx)),,nginx-light) \
	$(if $(or $(shell command -v prometheus),$(wildcard /usr/bin/prometheus)),,prometheus))

system-deps: ## nginx and Prometheus for the local serving path (installed with apt-get when missing).
	@if [ -n "$(SYSTEM_PACKAGES_MISSING)" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $(SYSTEM_PACKAGES_MISSING) (Debian packages for the local serving path)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES_MISSING); \
	  else \
	    echo "the local serving path needs $(SYSTEM_PACKAGES_MISSING): run 'sudo apt-get install $(SYSTEM_PACKAGES_MISSING)'"; exit 1; \
	  fi; \
	fi

demo: $(STAMP) system-deps ## The main job: offline plan of every stack, the local ML lifecycle, then RAG over the results.
	$(BIN)/mlp plan --no-tree
	$(BIN)/mlp demo
	$(BIN)/mlp rag ingest
	$(BIN)/mlp rag ask "How do I share one GPU between pods?" --backend all --top-k 3
	$(BIN)/mlp rag ask "What accuracy did the registered model reach in the demo?" --top-k 3

plan: $(STAMP) ## Offline plan of every stack with the resource trees.
	$(BIN)/mlp plan

test: $(STAMP) system-deps ## Every test tier (unit, component, plan, workloads end to end).
	$(BIN)/pytest

test-fast: $(STAMP) ## Skip the slow and end-to-end tiers.
	$(BIN)/pytest -m "not slow and not e2e"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

CHECKOV_VENV ?= .venv-checkov
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

# checkov lives in its own virtualenv: its dependency pins must not move the project's.
$(CHECKOV_STAMP):
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	@touch $@

checkov: $(STAMP) $(CHECKOV_STAMP) ## checkov over every rendered object, offline; fails outside policy/checkov-allowlist.yaml.
	$(BIN)/mlp plan --no-tree --policy --out build/plan
	$(BIN)/python -m policy.checkov_gate --plan build/plan --checkov $(CHECKOV_VENV)/bin/checkov --out build/checkov

clean:
	rm -rf build .mlp .pytest_cache
