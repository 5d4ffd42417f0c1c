PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test docs bench lint clean

$(STAMP): pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/impalpable demo --out out/demo

test: $(STAMP)
	$(VENV)/bin/ruff check spectra freedecomp hessian impalpable tests benchmarks examples
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q -n 2 tests

# The documentation (warnings are errors; the gallery executes every example at --small).
# make test builds it too, without executing the examples (tests/test_docs.py).
docs: $(STAMP)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
		$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

bench: $(STAMP)
	# The anchors pull torchvision; keep it on the pinned CPU torch, never a CUDA build.
	$(PY) -m pip install -q -e .[bench] $$(grep '^torch==' requirements-dev.txt)
	# PyPI's torchvision (pulled by an anchor) does not import beside the pinned CPU torch
	# ('operator torchvision::nms does not exist'); the benchmarks carry their own models.
	$(PY) -m pip uninstall -y -q torchvision || true
	OMP_NUM_THREADS=1 $(PY) benchmarks/bench_optim.py
	$(PY) benchmarks/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check spectra freedecomp hessian impalpable tests benchmarks examples

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
