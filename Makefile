# The two commands a user needs: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
# A problem's own dependencies: include/<problem>/requirements.txt (pip lines; may be absent or empty),
# installed on top of the lock. The stamp names a hash of the lock and of these files, so an unchanged
# venv is not synced again.
PROBLEM_REQUIREMENTS := $(sort $(wildcard include/*/requirements.txt))
STAMP := $(VENV)/.synced-$(shell sha1sum $(LOCK) $(PROBLEM_REQUIREMENTS) 2>/dev/null | sha1sum | cut -c1-12)
export PYTHONPATH := $(CURDIR)

.DEFAULT_GOAL := help
.PHONY: help venv run new-problem check-problem airflow repro test test-fast test-e2e lint format lock clean monitoring-tools security

help:  ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

venv: $(STAMP)  ## Create or update .venv from requirements.lock (exactly what CI tested) + include/*/requirements.txt

# First the lock, exactly (uv pip sync removes what it does not list); then every problem's
# requirements.txt that has a requirement line, in one `uv pip install` constrained by the lock: a
# problem may add packages but not move a locked version (change a pin there and `make lock` instead).
# Silent unless it installs something.
$(STAMP): $(LOCK) $(PROBLEM_REQUIREMENTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python $(LOCK)
	@files=(); args=(); for file in $(PROBLEM_REQUIREMENTS); do \
	  grep -qvE '^[[:space:]]*(#|$$)' "$$file" && files+=("$$file") && args+=(-r "$$file"); \
	done; \
	if [ $${#files[@]} -gt 0 ]; then \
	  out=$$($(BIN)/uv pip install --compile-bytecode --python $(BIN)/python -c $(LOCK) "$${args[@]}" 2>&1) \
	    || { echo "$$out" >&2; echo "make venv: installing $${files[*]} failed (see above)" >&2; exit 1; }; \
	  if grep -qE '^ [-+~] ' <<<"$$out"; then echo "installed for $${files[*]}:"; grep -E '^ [-+~] ' <<<"$$out"; fi; \
	fi
	@rm -f $(VENV)/.synced-* && touch $@

# make run's ports and state folder are settings (scripts/stack/config.py, local_config):
# MLP_STACK_STATE_DIR (.local; another folder also holds that stack's lake and DVC remote),
# MLP_STACK_AIRFLOW_PORT (8080), MLP_STACK_MLFLOW_PORT (5000), MLP_STACK_API_PORT (8000),
# MLP_STACK_WORKER_LOG_PORT (8793), MLP_STACK_TRIGGER_LOG_PORT (8794), MLP_STACK_PROMETHEUS_PORT (9090),
# MLP_STACK_PUSHGATEWAY_PORT (9091), MLP_STACK_STATSD_PORT (9125, UDP), MLP_STACK_STATSD_HTTP_PORT (9102).
# Prometheus and the Pushgateway come as in `make test` (monitoring-tools), but a machine that cannot install
# them still runs the chain: the message says why, and run_stack.py's banner shows metrics as off.
run: venv  ## Start Airflow, MLflow, the API and (if installable) Prometheus locally; run the chain to a served model
	@$(MAKE) --no-print-directory monitoring-tools || echo "make run: starting without Prometheus and the Pushgateway (see above)" >&2
	$(BIN)/python scripts/run_stack.py

new-problem: venv  ## Write include/<NAME>/ from a table: make new-problem NAME=sales SOURCE=data/sales.csv TARGET=units [ARGS=...]
	@if [ -z "$(NAME)" ] || [ -z "$(SOURCE)" ] || [ -z "$(TARGET)" ]; then \
	  $(BIN)/python -m include.mlpipeline.authoring.new_problem --help; echo >&2; \
	  echo 'usage: make new-problem NAME=<name> SOURCE=<file, URL or table> TARGET=<column> [ARGS="--task ... --key ..."]' >&2; \
	  exit 2; fi
	$(BIN)/python -m include.mlpipeline.authoring.new_problem --name "$(NAME)" --source "$(SOURCE)" --target "$(TARGET)" $(ARGS)

check-problem: venv  ## Check a problem package against the contract on a sample of its data: make check-problem PROBLEM=include.penguins
	@test -n "$(PROBLEM)" || { echo "usage: make check-problem PROBLEM=include.<name> [DAYS=2026-06-01..2026-06-03]" >&2; exit 2; }
	$(BIN)/python -m include.mlpipeline.authoring.check_problem $(PROBLEM) $(if $(DAYS),--days $(DAYS))

airflow: venv  ## The Airflow CLI against the make-run stack, e.g. make airflow ARGS="dags list"
	PYTHONPATH=$(CURDIR):$(CURDIR)/scripts $(BIN)/python -m stack $(ARGS)

test: venv monitoring-tools  ## Run the whole test suite: fast tests first, then the real end-to-end runs
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python scripts/security.py secrets
	$(BIN)/python scripts/security.py lint
	MLP_REQUIRE_MONITORING_TOOLS=1 $(BIN)/pytest -m "not e2e"
	$(BIN)/pytest -m e2e

test-fast: venv  ## Only the fast tests (no Airflow/MLflow servers)
	$(BIN)/pytest -m "not e2e"

test-e2e: venv  ## Only the end-to-end runs
	$(BIN)/pytest -m e2e

repro: venv  ## Rebuild raw, clean and feature partitions for params.yaml's days with DVC (no Airflow)
	PATH="$(CURDIR)/$(BIN):$$PATH" DVC_NO_ANALYTICS=1 $(BIN)/dvc repro

lint: venv  ## ruff
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lock: venv  ## Re-resolve requirements.lock from requirements-local.in (after changing a pin)
	$(BIN)/uv pip compile requirements-local.in -o $(LOCK) --python-version 3.11 --no-header --quiet
	sed -i '1i # Full lock of the local/CI environment. Generated by `make lock` (uv pip compile requirements-local.in); do not edit by hand.' $(LOCK)

# Prometheus (with promtool) and the Pushgateway from Debian/Ubuntu packages: the alert-rule and dashboard
# tests need them, and `make run` starts them (with the StatsD bridge) when they are installed.
MONITORING_PACKAGES := prometheus prometheus-pushgateway
monitoring-tools:  ## Install prometheus, promtool and prometheus-pushgateway (Debian packages) if missing
	@if command -v prometheus >/dev/null && command -v promtool >/dev/null \
	  && { command -v prometheus-pushgateway >/dev/null || command -v pushgateway >/dev/null; }; then \
	  exit 0; \
	elif ! command -v apt-get >/dev/null; then \
	  echo "make monitoring-tools: prometheus, promtool and prometheus-pushgateway are missing and there is no apt-get here." >&2; \
	  echo "  Install Prometheus and the Pushgateway with your package manager or from https://prometheus.io/download/" >&2; \
	  echo "  (binaries prometheus, promtool, prometheus-pushgateway or pushgateway on PATH), then run make again." >&2; \
	  exit 1; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing $(MONITORING_PACKAGES) (Debian packages)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(MONITORING_PACKAGES); \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
	  echo "installing $(MONITORING_PACKAGES) (Debian packages, with sudo)"; \
	  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(MONITORING_PACKAGES); \
	else \
	  echo "make monitoring-tools: prometheus, promtool and prometheus-pushgateway are missing, and installing them needs root." >&2; \
	  echo "  Run: sudo apt-get install $(MONITORING_PACKAGES)   then run make again." >&2; \
	  exit 1; \
	fi

security: venv  ## Secret scan (tree and git history), bandit over include/ and dags/, pip-audit of the lock
	$(BIN)/python scripts/security.py all

clean:  ## Remove local state (.local/ and data/); keeps .venv
	rm -rf .local data/lake
