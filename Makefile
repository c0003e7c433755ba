# The two set-up commands of the README: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench demo-prefect clean fuzz

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/journeys demo

test: $(STAMP)
	$(BIN)/ruff check src tests flows bench
	$(BIN)/ruff format --check src tests flows bench
	$(BIN)/journeys validate journey_specs
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check --fix src tests flows bench
	$(BIN)/ruff format src tests flows bench

fuzz: $(STAMP)  # the fuzz tests with 50x the cases CI runs (several minutes)
	JOURNEYS_FUZZ_EXAMPLES=5000 $(BIN)/python -m pytest -q tests/test_fuzz.py

bench: $(STAMP)
	$(BIN)/python bench/run.py

demo-prefect: $(STAMP)
	$(BIN)/journeys demo --prefect

clean:
	rm -rf $(VENV) .pytest_cache build dist journeys.db demo-out
