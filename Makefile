# The two commands the README starts with. Each creates .venv and installs what it needs,
# so both work on a fresh machine with nothing installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch that lies on the CI machines' disk; a newer pin downloads CUDA.
TORCH := torch==2.13.0

.PHONY: demo test test-full lint bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[keras]' '$(TORCH)'
	touch $@

# The dev extra (4 GB installed) through uv, which pip installs first: uv fetches and unpacks in
# parallel, 1 min where pip took 5 (tensorflow's own download aside). It compiles the bytecode
# on every core (about 1 min on 2): left to the tests, each of their processes compiled what it
# imported before another had written it, and a suite on a fresh venv ran 3 min longer. uv
# reads no pip configuration: pip's find-links, where the CPU torch wheel lies, are passed on,
# or uv would download torch's CUDA build.
UV := uv==0.13.8
FIND_LINKS = $(sort $(shell $(BIN)/pip config list 2>/dev/null | sed -n "s/^.*find-links='\(.*\)'$$/\1/p"))

$(BIN)/uv: | $(BIN)/python
	$(BIN)/pip install -q '$(UV)' || echo "make: uv could not be installed: pip installs the dev extra"

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python $(addprefix --find-links ,$(FIND_LINKS)) -e '.[dev]' \
	  || $(BIN)/pip install -q -e '.[dev]'  # where uv cannot reach the registry, pip's own way
	touch $@ $(VENV)/.demo-installed

# The browser tests (tests/report/test_browser.py) drive Debian's chromium, never a download.
# Installed as root or through sudo; where neither works they skip, saying why. Marked done
# only once chromium is there, so a later run tries again.
$(VENV)/.browser-installed: | $(BIN)/python
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else SUDO=none; fi; \
	  if [ "$$SUDO" = none ]; then echo "make: cannot install chromium (not root, no sudo): browser tests will skip"; \
	  else $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium \
	    || echo "make: apt-get could not install chromium: browser tests will skip"; fi; }
	@if command -v chromium >/dev/null; then touch $@; fi

demo: $(VENV)/.demo-installed
	KERAS_BACKEND=torch $(BIN)/paramscope demo

# pytest runs on both cores, a file on one worker; the Keras child runs (jax, tensorflow,
# tf.keras) are units of their own, handed out first (tests/conftest.py). The jax and tensorflow
# runs are lean (cases marked `sweep` run on torch only) and the fuzzers draw 20 examples a
# target; `make test-full` runs every sweep on every backend and 50 examples.
# The files holding tests marked `serial`, named so that their run does not collect (import) the
# whole suite; tests/conftest.py fails a run that finds a serial test anywhere else.
SERIAL_TESTS := tests/files/test_hostile_corpus.py

test: $(VENV)/.dev-installed $(VENV)/.browser-installed
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/python -m pytest -n auto --dist loadfile -m "not serial"  # both cores; see tests/conftest.py
	$(BIN)/python -m pytest -m serial $(SERIAL_TESTS)  # measured tests (CPU seconds), alone

test-full:
	PARAMSCOPE_FULL=1 $(MAKE) test

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix src tests benchmarks examples
	$(BIN)/ruff format src tests benchmarks examples

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/files.py
	$(BIN)/python benchmarks/audit.py

# The long fuzzing run (minutes, not part of `make test`): every reader, many more examples.
fuzz: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/fuzz.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
