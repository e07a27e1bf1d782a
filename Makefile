# Every target installs what it needs into .venv itself: nothing by hand.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint typecheck bench docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/slipstream demo

lint: $(STAMP)
	$(BIN)/python -m ruff check src tests benchmarks examples
	$(BIN)/python -m ruff format --check src tests benchmarks examples
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/python -m mypy

test: lint typecheck
	$(BIN)/python -m pytest

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b --quick || exit 1; done

docs: $(STAMP)
	$(BIN)/python -c "from slipstream._impl.core.rules import PAGES, write_docs; [write_docs(path, page) for page, (path, _) in PAGES.items()]"

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
