# radflow: the two set-up commands are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= 2
DEMO   := demo

.PHONY: run test test-fast test-slurm lint demo clean-results help

help:
	@echo "make run   - create .venv, install radflow, generate the demo cohort, run the workflow"
	@echo "make test  - create .venv, install radflow, run the test-suite"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/radflow demo $(DEMO)

run: demo
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --cores $(CORES) --configfile config/demo.yaml

test: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest

test-fast: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -m "not slow"

# The workflow on a real single-node SLURM (root: installs Debian's slurm-wlm, starts the
# daemons, stops them by PID afterwards; tests/test_slurm.py). Hard time limit: SIGKILL.
test-slurm: $(STAMP)
	RADFLOW_SLURM_TEST=1 PATH=$(CURDIR)/$(BIN):$$PATH timeout -s KILL 900 \
		$(BIN)/python -m pytest tests/test_slurm.py; \
	status=$$?; tests/cluster/stop_slurm.sh; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --lint --configfile config/demo.yaml

clean-results:
	rm -rf results .snakemake
