# radflow: the two set-up commands are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= 2
DEMO   := demo

.PHONY: run test test-fast test-slurm testdata lint demo clean-results help bench

help:
	@echo "make run   - create .venv, install radflow, generate the demo cohort, run the workflow"
	@echo "make test  - create .venv, install radflow, run the test-suite"
	@echo "make testdata - download the third-party reference data the tests use (~110 MB)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/radflow demo $(DEMO)

run: demo
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --cores $(CORES) --configfile config/demo.yaml
	@test -f results/demo/report/index.html && echo "radflow: open the report: results/demo/report/index.html" || true

# One pytest worker per core, each test file on one worker (its module fixtures run once).
test: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -n $(CORES) --dist loadfile

test-fast: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -m "not slow"

# The third-party reference data of the tests (~110 MB), from its public sources at pinned
# versions, every file checked against its SHA-256 (tests/testdata_registry.py); into
# RADFLOW_TESTDATA, else ../shared/data, where the tests look. Files already there are kept.
TESTDATA ?= $(if $(RADFLOW_TESTDATA),$(RADFLOW_TESTDATA),$(abspath ../shared/data))
testdata: $(STAMP)
	$(BIN)/python tests/testdata_registry.py fetch $(TESTDATA)

# The workflow on a real single-node SLURM (root: installs Debian's slurm-wlm, starts the
# daemons, stops them by PID afterwards; tests/test_slurm.py). Hard time limit: SIGKILL.
test-slurm: $(STAMP)
	RADFLOW_SLURM_TEST=1 PATH=$(CURDIR)/$(BIN):$$PATH timeout -s KILL 900 \
		$(BIN)/python -m pytest tests/test_slurm.py; \
	status=$$?; tests/cluster/stop_slurm.sh; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --lint --configfile config/demo.yaml

# The performance figures of the README (bench/*.py; each runs radflow and the bare reference tool
# side by side, A B A B, and prints paired ratios). Not part of CI. Needs Debian's dcm2niix
# (apt-get install dcm2niix); MIRP goes into its own environment (.venv-bench), as it pins its own
# numpy/scipy/ITK and is not a radflow dependency.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed:
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet mirp==2.7.0
	touch $@

bench: $(STAMP) $(BENCH_VENV)/.installed
	@command -v dcm2niix >/dev/null || { echo "bench: dcm2niix is missing (apt-get install dcm2niix)"; exit 1; }
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python bench/planning.py
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python bench/convert.py
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python bench/extract_stage.py
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python bench/extract_stage.py --families
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python bench/semantic.py
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python bench/startup.py
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python bench/laws.py --mirp-python $(BENCH_VENV)/bin/python

clean-results:
	rm -rf results .snakemake
