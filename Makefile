# Two commands for a newcomer: `make demo` (the main job) and `make test` (the whole suite).
# Both create .venv if missing and install what they need into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of PyTorch; override (e.g. TORCH_SPEC=torch) to take another build.
TORCH_SPEC ?= torch==2.13.0
# Extras each target installs; the tests exercise every optional backend for real.
EXTRAS_demo := gym
EXTRAS_test := test,ray,plot,gym,onnx,bench,progress

.PHONY: demo test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS_$*)]"
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/python examples/distributed_demo.py

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build src/*.egg-info
