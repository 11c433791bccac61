# The two commands: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
CORES ?= all
# Two pytest workers, each taking whole test files in collection order, which
# tests/conftest.py makes the slow end-to-end runs first, longest first: the
# Slurm test mostly waits on status checks, so the other runs use the CPU
# meanwhile, and the many short tests fill in at the end.
TEST_WORKERS ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Pinned versions (constraints.txt) for an install that matches CI's;
# `make CONSTRAINTS= ...` lets pip resolve pyproject.toml's ranges instead.
CONSTRAINTS ?= constraints.txt

.PHONY: run test lint sweep clean-results

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[dev]"
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) $(SNAKEMAKE_ARGS)
	@echo
	@echo "Tables:  results/synthetic/tables/ (recovery.md: recovered vs planted weights)"
	@echo "Figures: results/synthetic/figures/ (across datasets: results/comparison/)"
	@echo "Report:  $(BIN)/snakemake --report report.html"

# The recovery check on worlds the defaults were not tuned for (config: sweep).
sweep: $(STAMP)
	$(BIN)/snakemake sweep --cores $(CORES) $(SNAKEMAKE_ARGS)
	@echo
	@echo "Table: results/sweep/tables/recovery.md (every world, readout and control)"

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/ruff check src tests workflow/scripts bench
	$(BIN)/ruff format --check src tests workflow/scripts bench

clean-results:
	rm -rf results .snakemake
