# hourglass developer tasks. `make test` and `make demo` install what they need first.
PYTHON ?= python3
STAMP := .make/installed

# On the project's machines the reference data sets sit in ../shared/data; point the
# library at them (it never assumes that folder itself). Elsewhere, the library finds
# its data through $HOURGLASS_DATA, its cache, or by downloading.
ifneq ($(wildcard ../shared/data),)
export HOURGLASS_DATA ?= $(abspath ../shared/data)
endif

.PHONY: install test demo docs check lint format typecheck bench clean

install:
	$(PYTHON) -m pip install -c constraints.txt -e ".[dev,onnx,serve,dask]"
	@mkdir -p $(dir $(STAMP)) && touch $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(MAKE) install

# PyTorch's CPU kernel sets (ATEN_CPU_CAPABILITY). The reliability tests (determinism,
# batch invariance, ...) run under each one this CPU can execute: a result that is
# bit-identical under one must be under all. The rest of the suite runs once.
KERNEL_SETS := default \
  $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && echo avx2) \
  $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo avx512)

# tests/docs renders the built documentation site in Chromium: `make docs` runs it right
# after the build (the site does not exist before), so `make test` leaves it out.
test: $(STAMP)
	$(PYTHON) -m pytest --ignore=tests/reliability --ignore=tests/docs
	@for kernels in $(KERNEL_SETS); do \
	  echo "== tests/reliability with ATEN_CPU_CAPABILITY=$$kernels"; \
	  ATEN_CPU_CAPABILITY=$$kernels $(PYTHON) -m pytest tests/reliability || exit 1; \
	done

demo: $(STAMP)
	$(PYTHON) -m hourglass demo --out demo-output

# The documentation site: the user guide, the API reference and the gallery, whose
# examples run during the build (a few minutes on 2 cores). Offline; warnings are errors.
# Then tests/docs opens the built pages in headless Chromium (every image decoded, no
# console errors): it checks this build's output, so it runs here and not in `make test`.
docs: $(STAMP)
	$(PYTHON) -m pip install -c constraints.txt -e ".[docs]"
	MPLBACKEND=Agg $(PYTHON) -m sphinx -W --keep-going -b html docs docs/_build/html
	HOURGLASS_DOCS_SITE=docs/_build/html $(PYTHON) -m pytest -q tests/docs

lint: $(STAMP)
	$(PYTHON) -m ruff format --check src tests benchmarks examples
	$(PYTHON) -m ruff check src tests benchmarks examples

format: $(STAMP)
	$(PYTHON) -m ruff format src tests benchmarks examples
	$(PYTHON) -m ruff check --fix src tests benchmarks examples

typecheck: $(STAMP)
	$(PYTHON) -m mypy

check: lint typecheck test

bench: $(STAMP)
	$(PYTHON) benchmarks/reference_study.py
	$(PYTHON) benchmarks/denoising.py
	$(PYTHON) benchmarks/text.py
	$(PYTHON) benchmarks/tabular.py
	$(PYTHON) benchmarks/clustering.py
	$(PYTHON) benchmarks/training_speed.py

# The sdist and the wheel, built as a release builds them (an isolated build environment),
# then checked by twine: metadata, and the README as PyPI will render it.
DIST_DIR ?= dist
.PHONY: dist
dist: $(STAMP)
	rm -rf $(DIST_DIR)
	$(PYTHON) -m build --outdir $(DIST_DIR) .
	$(PYTHON) -m twine check --strict $(DIST_DIR)/*

clean:
	rm -rf .make build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache demo-output \
	  docs/_build docs/auto_examples docs/sg_execution_times.rst
