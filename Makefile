# The README's set-up commands, plus lint and bench.
PY ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

$(BIN)/seqlab: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,serve,onnx,tune,browser]'
	touch $@

install: $(BIN)/seqlab

run: install
	$(BIN)/seqlab demo

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check src tests bench

.PHONY: install run test lint
