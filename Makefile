# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv when missing and install torch (the CPU build on this machine's disk) before the package,
# so pip never resolves torch itself and never pulls a CUDA build.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0
EXTRAS := dicom,onnx,dev

.PHONY: demo test bench lint format clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m monai_unet.cli.main demo --output-dir outputs/demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) -m benchmarks

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) outputs .pytest_cache
