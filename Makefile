# Every target makes .venv on first use and installs the project into it, so a fresh clone
# needs nothing but python3 (>= 3.11), pip and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH ?= all

.PHONY: run test bench lint clean

# Set-up output goes to stderr so that `make bench` prints nothing but JSON on stdout.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) >&2
	@$(BIN)/python -m pip install --quiet --upgrade pip >&2
	@$(BIN)/python -m pip install --quiet -e '.[dev]' >&2
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/steward run

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	@$(BIN)/python -m bench $(BENCH)

lint: $(STAMP)
	$(BIN)/ruff check actors supervisor exchanges bench tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
