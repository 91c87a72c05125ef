# Quickstart: `make demo` (train + analyse), `make test` (the test suite).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONDONTWRITEBYTECODE := 1

# On a machine without an NVIDIA GPU, pin the CPU build of torch (constraints-cpu.txt);
# with a GPU, pyproject's torch range keeps the CUDA torch that is already installed.
HAS_GPU     := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo yes)
CONSTRAINTS := $(if $(HAS_GPU),,-c constraints-cpu.txt)

.PHONY: install demo test test-slow lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints-cpu.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(CONSTRAINTS) -e '.[dev]'
	touch $(STAMP)

demo: install
	$(PY) -m interp.train --preset tiny --out checkpoints/tiny --force
	$(PY) -m interp.analyze checkpoints/tiny
	$(PY) -m interp.analyze checkpoints/nanda-p113

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

lint: install
	$(VENV)/bin/ruff check .

format: install
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
