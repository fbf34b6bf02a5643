# Every target makes .venv on first use and installs the project into it, so a fresh clone
# needs nothing but python3 (>= 3.11), pip and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH ?= all

.PHONY: run test bench lint clean protos

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
	$(BIN)/ruff check actors supervisor exchanges bench protos clients tests
	$(BIN)/mypy

# From the repository root, so the modules import as `protos.control_pb2`; the PATH lets protoc
# find mypy-protobuf's plugins in the venv.
protos: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m grpc_tools.protoc -I. --python_out=. \
		--grpc_python_out=. --mypy_out=. --mypy_grpc_out=. protos/control.proto

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
