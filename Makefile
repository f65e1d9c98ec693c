# Everything runs inside .venv, created and filled from the pinned
# requirements.txt on first use.  `make book` and `make test` are all a new
# machine needs (Python 3.11+).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install book chromium test test-unit test-notebooks test-browser execute bench bench-search lab clean

help:
	@echo "make book      build the HTML book into _build/html (from stored outputs)"
	@echo "make test      run every test: unit tests, every notebook under nbval, every page in Chromium"
	@echo "make execute   re-run every notebook in place in a fresh kernel"
	@echo "make bench     time the tutorial's code against the book's (prints ratios)"
	@echo "make bench-search  time chapter 6's grid search: one process, local processes, Dask"
	@echo "make lab       open the chapters in JupyterLab"
	@echo "make clean     remove the build output (keeps .venv)"

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "Open _build/html/index.html"

test: test-unit test-notebooks test-browser

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests --ignore=tests/browser

# Every page of the built book in Debian's Chromium, offline (tests/browser).
test-browser: book chromium
	$(BIN)/python -m pytest tests/browser

chromium:
	bash tools/install_chromium.sh

# --nbval-current-env: run the notebooks with this environment's Python, whatever
# kernels are installed elsewhere on the machine.  tests/offline on PYTHONPATH
# blocks network access in the kernels and their workers (tests/test_offline.py).
test-notebooks: $(STAMP)
	PYTHONPATH=$(CURDIR)/tests/offline $(BIN)/python -m pytest --nbval --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg chapters/

execute: $(STAMP)
	$(BIN)/python tools/execute_notebooks.py chapters/*.ipynb

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_cv.py

# Chapter 6's grid search in one process, on local processes and on a Dask
# LocalCluster; writes benchmarks/search_results.json, which the chapter quotes.
bench-search: $(STAMP)
	$(BIN)/python benchmarks/bench_search.py

lab: $(STAMP)
	$(BIN)/jupyter lab chapters/

clean:
	rm -rf _build
