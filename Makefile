# The two commands the README starts with. Each creates .venv and installs what it needs,
# so both work on a fresh machine with nothing installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch that lies on the CI machines' disk; a newer pin downloads CUDA.
TORCH := torch==2.13.0

.PHONY: demo test lint bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[keras]' '$(TORCH)'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	KERAS_BACKEND=torch $(BIN)/paramscope demo

# pytest runs on both cores, a file on one worker; the Keras child runs (jax, tensorflow in two
# parts each, tf.keras) are units of their own, handed out first (tests/conftest.py).
test: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/python -m pytest -n auto --dist loadfile -m "not serial"  # both cores; see tests/conftest.py
	$(BIN)/python -m pytest -m serial  # measured tests (CPU seconds), alone

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/files.py
	$(BIN)/python benchmarks/audit.py

# The long fuzzing run (minutes, not part of `make test`): every reader, many more examples.
fuzz: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/fuzz.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
