# sandflow: every target sets up .venv on a fresh machine first.
PY := .venv/bin/python
TORCH := torch==2.13.0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install test test-slow lint format docs demo bench clean

.venv/installed: pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: .venv/installed

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check sandflow tests benchmarks docs examples
	$(PY) -m ruff format --check sandflow tests benchmarks docs examples

format: install
	$(PY) -m ruff format sandflow tests benchmarks docs examples
	$(PY) -m ruff check --fix sandflow tests benchmarks docs examples

docs: install
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

demo: install
	.venv/bin/sandflow demo --out demo-output

.venv/bench-installed: .venv/installed
	$(PY) -m pip install -q -e ".[dev,bench]"
	$(PY) -m pip install -q --no-deps torchcfm
	touch $@

bench: .venv/bench-installed
	$(PY) -m benchmarks.run

clean:
	rm -rf .venv docs/_build demo-output .pytest_cache
