# Everything runs inside .venv, created and filled from the pinned
# requirements.txt on first use.  `make book` and `make test` are all a new
# machine needs (Python 3.11+).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KERNEL := $(VENV)/.kernel-compiled

.PHONY: help install book chromium lint format sync test test-unit test-notebooks test-browser execute bench bench-search lab clean

help:
	@echo "make book      build the HTML book into _build/html (from stored outputs)"
	@echo "make test      run every test: lint, unit tests, every notebook under nbval, every page in Chromium"
	@echo "make format    reformat the Python files and the chapters' code cells (ruff)"
	@echo "make sync      bring each chapter's .ipynb and its MyST text (.md) into step (the newer wins)"
	@echo "make execute   sync, then re-run every notebook in place in a fresh kernel"
	@echo "make bench     time the tutorial's code against the book's (prints ratios)"
	@echo "make bench-search  time chapter 6's grid search: one process, local processes, Dask"
	@echo "make lab       open the chapters in JupyterLab"
	@echo "make clean     remove the build output (keeps .venv)"

# The packages are installed by uv (pinned here; the book itself never imports
# it): it fetches and unpacks in parallel and compiles the bytecode on every
# core, 36 s against pip's 89 s for requirements.txt here (session 12, both
# with their caches warm; the same 191 packages at the same versions).  The
# venv's own pip installs uv and stays in .venv for readers' use.
UV_PIN := uv==0.13.8
UV     := $(BIN)/uv pip install --quiet --python $(BIN)/python

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(UV_PIN)
	$(UV) --compile-bytecode -r requirements.txt
	$(UV) --no-deps --editable .
	touch $(STAMP)

# Compile the lanes' kernel once into Numba's cache (tools/warm_kernel.py):
# otherwise every process the tests start at once would compile it, about
# 20 s each.  Again whenever the kernel's source changes.  Its own target, so
# that make test can build the book (which never trains) meanwhile.
$(KERNEL): $(STAMP) helpers/lane_kernel.py
	$(BIN)/python tools/warm_kernel.py
	touch $(KERNEL)

install: $(STAMP) $(KERNEL)

book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "Open _build/html/index.html"

# Two steps at a time where one leaves a core idle (vmstat 2 over a fresh
# clone's make test, session 17): the kernel's compilation and the book's
# build each keep one core busy, and the browser tests 1.35 of 2, so the
# first pair runs side by side and the browser tests run beside the unit
# tests (1.87 cores alone); the notebooks (1.89) follow on their own.  Each
# step's output is printed whole when it ends (--output-sync).  Unit tests
# and notebooks side by side (make -j3, session 15) gained nothing: both
# keep the cores busy already.
test: lint
	$(MAKE) --no-print-directory -j2 --output-sync=target test-unit test-browser
	$(MAKE) --no-print-directory test-notebooks

# ruff checks formatting and lint rules (pyproject.toml; chapters/ruff.toml
# holds the chapters' code cells to the book's 78-character code column).
lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

# Reformatting a chapter changes its code: re-execute it (make execute).
format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(MAKE) sync

# Each chapter is a notebook (with outputs, what the book and nbval use) paired
# with a MyST Markdown text of the same cells (what a reviewer reads); jupytext
# copies whichever of the two was changed last onto the other, keeping the
# notebook's outputs. tests/test_notebooks.py fails while a pair disagrees.
sync: $(STAMP)
	$(BIN)/jupytext --sync chapters/*.ipynb

# One process per core (pytest-xdist), a test file's tests kept together so
# its fixtures are made once; alone they keep 1.3 of the 2 cores busy here.
test-unit: $(KERNEL)
	$(BIN)/python -m pytest tests --ignore=tests/browser -n auto --dist loadfile

# Every page of the built book in Debian's Chromium, offline (tests/browser).
# --confcutdir: tests/conftest.py imports helpers (TensorFlow) for the unit
# tests; the browser tests never need it, and it cost them 8 of 14 s of
# start-up (session 17).
test-browser: book chromium
	$(BIN)/python -m pytest tests/browser --confcutdir tests/browser

chromium:
	bash tools/install_chromium.sh

# The README's `pytest --nbval chapters/`, with the environment's Python, on
# one pytest-xdist process per core, each notebook's cells kept together in
# one process: here two notebooks at a time, 11.5 against 13.3 min one after
# another (session 11), since a lone notebook leaves a core idle 13% of the
# time.  chapters/conftest.py sets what it needs in every process (this
# environment's kernel, the sanitize file, exact or band mode, and
# tests/offline on PYTHONPATH, which blocks network access in the kernels and
# their workers: tests/test_offline.py); tests/test_exact_outputs.py runs
# these options on a scratch notebook.  At most four at a time, since each
# kernel holds TensorFlow; side by side, each notebook trains on its share of
# the cores (chapters/conftest.py sets DROPOUT_BOOK_N_JOBS: here one process,
# its kernel, instead of two worker processes per notebook queueing for the
# same two cores).  Notebooks start longest first (chapters/conftest.py orders
# them by their stored run time; --no-loadscope-reorder keeps that order
# instead of xdist's, by number of cells).
NBVAL_OPTIONS := -n auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder
test-notebooks: $(KERNEL)
	$(BIN)/python -m pytest --nbval chapters/ $(NBVAL_OPTIONS)

execute: sync $(KERNEL)
	$(BIN)/python tools/execute_notebooks.py chapters/*.ipynb

bench: $(KERNEL)
	$(BIN)/python benchmarks/bench_cv.py

# Chapter 6's grid search in one process, on local processes and on a Dask
# LocalCluster; writes benchmarks/search_results.json, which the chapter quotes.
bench-search: $(KERNEL)
	$(BIN)/python benchmarks/bench_search.py

# JupyterLab with this environment's Python as the notebooks' kernel ("python3"),
# even when the reader has a python3 kernel of their own that Jupyter would
# otherwise find first (in ~/.local/share/jupyter with JUPYTER_PREFER_ENV_PATH=0,
# or on their JUPYTER_PATH): the kernel is installed in .venv with this Python's
# full path, and .venv's folder goes first on JUPYTER_PATH.  tests/test_lab.py
# runs this recipe.
LAB_COMMAND ?= lab chapters/
lab: $(KERNEL)
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 \
		--display-name "Python 3 (dropout book)" > /dev/null
	JUPYTER_PATH=$(CURDIR)/$(VENV)/share/jupyter$${JUPYTER_PATH:+:$$JUPYTER_PATH} \
		$(BIN)/jupyter $(LAB_COMMAND)

clean:
	rm -rf _build
