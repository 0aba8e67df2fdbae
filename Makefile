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

.PHONY: demo test test-slicer bench dist lint format clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

EM := bundles/em_membrane_segmentation
MRI := bundles/brain_tumor_mri_segmentation

# The main job: both bundles' inference with their shipped weights on sample_data/, labels + probabilities +
# overlays under outputs/demo/ (the same path as `python -m monai.bundle run`).
demo: $(STAMP)
	$(PY) -m monai.bundle run --config_file $(EM)/configs/inference.json --meta_file $(EM)/configs/metadata.json \
		--logging_file $(EM)/configs/logging.conf --bundle_root $(EM) \
		--output_dir outputs/demo/em_membrane_segmentation --save_probabilities true
	$(PY) -m monai.bundle run --config_file $(MRI)/configs/inference.json --meta_file $(MRI)/configs/metadata.json \
		--logging_file $(MRI)/configs/logging.conf --bundle_root $(MRI) \
		--output_dir outputs/demo/brain_tumor_mri_segmentation --output_ext .seg.nrrd --save_probabilities true
	@echo "files written (labels, probabilities, overlays):"
	@find outputs/demo -type f | sort

# Two pytest workers: most of the suite's time is subprocesses importing MONAI (5 s each) and wall-clock
# training budgets, which overlap well on 2 cores (9 min 02 s serial, 6 min 40 s with -n 2 on 2026-12-03).
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -n 2 --dist worksteal --durations=15 tests

# 3D Slicer's own MRML code (slicer-core, with VTK: about 190 MB more) reads our .seg.nrrd and writes volumes our
# reader takes; apart from `make test` so that its install stays out of the 10 minutes.
test-slicer: $(STAMP)
	$(PIP) install --quiet -e ".[slicer]"
	$(PY) -m pytest -q tests/test_slicer_core.py

bench: $(STAMP)
	$(PY) -m benchmarks

# A wheel and an sdist under dist/; both carry the shipped bundles (configs, docs, weights) as package data, so an
# installed package runs `monai-unet segment ... --bundle em_membrane_segmentation` from any folder.
dist: $(STAMP)
	rm -rf build dist
	$(PY) -c "from setuptools import build_meta as b; b.build_sdist('dist'); b.build_wheel('dist')"
	@ls -l dist

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) outputs .pytest_cache build dist
