# The README's commands. Each creates the virtual environment it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## Set up and start the service on the embedded SQLite default.
run: $(STAMP)
	@echo "First key:  $(BIN)/casebook keys create --name me --role case_worker --org my-org"
	$(BIN)/casebook serve --host 127.0.0.1 --port 8000

## Set up and run every check: lint, types, the whole test suite.
test: $(STAMP)
	$(BIN)/ruff check domain infrastructure api tests bench
	$(BIN)/ruff format --check domain infrastructure api tests bench
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
