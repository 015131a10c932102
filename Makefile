# For a newcomer: `make demo` (the main job) and `make test` (the import layers, then the whole suite, as CI runs it).
# For a developer: `make test-fast`, the suite without the tests marked slow (processes, Ray, benchmarks), in about
# two and a quarter minutes. Each target creates .venv if missing and installs what it needs into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of PyTorch; override (e.g. TORCH_SPEC=torch) to take another build.
TORCH_SPEC ?= torch==2.13.0
# Extras each target installs; the tests exercise every optional backend for real.
EXTRAS_demo := gym
EXTRAS_test := test,ray,plot,gym,mujoco,onnx,bench,progress,metrics,browser

.PHONY: demo test test-fast clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS_$*)]"
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/python examples/distributed_demo.py

# lint-imports checks the layer contracts of pyproject.toml's [tool.importlinter] before any test runs.
test: $(VENV)/.installed-test
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) build src/*.egg-info
