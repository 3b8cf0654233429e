# Two commands: `make demo` and `make test`. Both create .venv first; `demo` installs what
# searchkit needs, `test` adds the test tools and the cluster extra (Ray, Playwright, ...).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STAMP_ALL := $(VENV)/.installed-all
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check

.PHONY: install install-all browser demo test lint bench bench-data clean

install: $(STAMP)

install-all: $(STAMP_ALL)

# torch first, pinned: a bare or transitive torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install torch==2.13.0
	$(PIP) install -e .
	touch $(STAMP)

$(STAMP_ALL): $(STAMP)
	$(PIP) install -e ".[dev,cluster]"
	touch $(STAMP_ALL)

demo: install
	$(BIN)/searchkit query "S-400 sanctions"

lint: install-all
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy searchkit

# The page test drives Debian's chromium through Playwright (no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is not installed and this is not root: the browser test will be skipped"; fi; }

test: lint browser
	$(BIN)/pytest

# The real-text ingestion benchmark reads Debian's kernel documentation (3,000+ HTML pages).
bench-data:
	@ls -d /usr/share/doc/linux-doc-*/html >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-doc >/dev/null; \
	  else echo "linux-doc is not installed and this is not root: the ingestion section is skipped"; fi; }

bench: install-all bench-data
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
	find index -mindepth 1 ! -name README.md -exec rm -rf {} +
