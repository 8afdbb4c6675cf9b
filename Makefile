# Two commands matter: `make test` and `make demo`. Everything else is a step of those, or for exploring.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TIDBOPS_PLAYGROUND_HOME ?= $(CURDIR)/.playground
PYTEST_ARGS ?=

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort

system-deps:  ## Debian packages the tests need (mariadb-server, percona-toolkit, chromium); installs them as root
	@bash scripts/system-deps.sh

# Production (requirements.txt, tidbops from setup.py) and development (requirements-dev.txt, tidbops-playground
# from playground/), both editable; docs/deploy.md installs production alone.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml setup.py playground/pyproject.toml playground/setup.py include/tidbops/slowlog/_scan.c
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "error: cannot create a venv; on Debian/Ubuntu: apt-get install python3-venv" >&2; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps -e . -e ./playground
	@touch $(STAMP)

venv: $(STAMP)  ## the project venv: every pinned dependency, tidbops and tidbops-playground installed (editable)

lint: venv  ## ruff (with Airflow's AIR rules) and mypy strict on the core
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: system-deps venv lint  ## everything: unit, operators, dags, playground, integration, e2e tiers and the fault matrix; the 30 slowest tests listed
	$(VENV)/bin/pytest --durations=30 $(PYTEST_ARGS)

test-faults: system-deps venv  ## the fault matrix only (tests/faults/): prints the table and writes docs/reliability.md
	TIDBOPS_FAULTS_TABLE=$(CURDIR)/docs/reliability.md $(VENV)/bin/pytest -m faults tests/faults -s $(PYTEST_ARGS)

test-unit: venv  ## the fast tier only
	$(VENV)/bin/pytest -m "unit or operators or dags" $(PYTEST_ARGS)

playground-up: venv  ## start the emulated TiDB clusters, the S3 server and the writer
	$(VENV)/bin/tidbops playground up

playground-down: venv  ## stop them and the playground's Airflow (data stays in $(TIDBOPS_PLAYGROUND_HOME))
	$(VENV)/bin/tidbops playground down

playground-status: venv
	$(VENV)/bin/tidbops playground status

up: system-deps venv playground-up  ## a real Airflow (standalone, LocalExecutor, metadata on the playground's PostgreSQL) with these DAGs; safe twice; Ctrl-C stops it
	$(PY) -m tidbops_playground.airflow run

demo: system-deps venv  ## bring the playground up and run the pipelines through Airflow, printing what happened
	$(PY) -m tidbops_playground.demo

bench-parse: venv  ## DAG-parse benchmark: our DAG files for a 500-cluster fleet vs EmptyOperator DAGs
	$(PY) bench/bench_dag_parse.py --clusters 500

bench-cli: venv  ## start-up of the installed tidbops: --version, --help, a tiny slow-log digest (wall time, peak RSS)
	$(PY) bench/bench_cli_startup.py --runs 15

bench-slowlog: system-deps venv  ## slow-log digest vs pt-query-digest on a 50k-entry, 140 MB TiDB v8.5 log (throughput, peak RSS, per-digest agreement) and of a tiny log
	$(PY) bench/bench_slowlog.py --entries 50000

bench-validate: system-deps venv  ## drill validation: compare_table (sequential, concurrent) vs a bare scan, 1M rows in two MariaDB servers
	$(PY) bench/bench_validate.py --rows 1000000

bench-drill: system-deps venv  ## a drill's platform overhead (wall - BR - check SQL) per task, warm vs lazy workers, through a real Airflow on the playground
	$(PY) bench/bench_drill_overhead.py --rows 100000 --runs 3

bench-fleetview: system-deps venv  ## fleet page, audit and /metrics over 1M catalog rows (queries, then requests through Airflow's app), SQLite and MariaDB
	$(PY) bench/bench_fleetview.py --clusters 500 --rows 1000000
	$(PY) bench/bench_fleet_page.py --backend sqlite
	$(PY) bench/bench_fleet_page.py --backend mariadb

bench-fleet: system-deps venv  ## nightly round of a 50-cluster fleet through a real scheduler, BR capped at 4 fleet-wide (BR at once from the journal, scheduler delay, RSS, verified backups), then the DAG processor's per-file parse times for 200 clusters; not in `make test`
	$(PY) bench/bench_fleet.py --clusters 50 --drills 5 --br-concurrency 4 --parse-clusters 200

.PHONY: bench-fleet

clean:  ## stop the playground and remove it, and build leftovers
	-$(VENV)/bin/tidbops playground down --purge
	rm -rf .pytest_cache .mypy_cache .ruff_cache build *.egg-info

.PHONY: help system-deps venv lint test test-faults test-unit playground-up playground-down playground-status up demo bench-parse bench-cli bench-slowlog bench-validate bench-drill bench-fleetview clean
