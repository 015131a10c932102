# Two commands for a newcomer: `make demo` (the main job) and `make test` (the whole suite).
# Both create .venv if missing and install what they need into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of PyTorch; override (e.g. TORCH_SPEC=torch) to take another build.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= test

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-$(EXTRAS): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed-$(EXTRAS)

demo: install
	$(BIN)/python examples/xor_solve.py

test: EXTRAS = test
test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
