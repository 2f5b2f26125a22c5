# The front door: `make run`, `make test`, `make lint`, `make bench`, `make package`, `make deploy`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench package deploy clean clean-local

$(STAMP): requirements/lambda.txt requirements/app.txt requirements/dev.txt requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt -c requirements/constraints.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m local_stack

test: $(STAMP) lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

clean-local:
	rm -rf .local

clean: clean-local
	rm -rf $(VENV) build .pytest_cache .ruff_cache
