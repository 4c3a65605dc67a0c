# Two commands, each doing its own set-up on a fresh machine:
#   make run    the main job on the bundled default sample
#   make test   the test suite
# Both create .venv (CPU only; torch 2.13.0 CPU is used by training and its tests) and install recotrig into it.

PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed

.PHONY: run test bench sample clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/recotrig run --report

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/bench_engine.py

sample: $(STAMP)
	$(BIN)/python -m recotrig.sequences.samples data

clean:
	rm -rf $(VENV) recotrig-out
