# sandflow: every target sets up .venv on a fresh machine first.
PY := .venv/bin/python
TORCH := torch==2.13.0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install test test-slow lint format docs demo bench gpu-check clean

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

# the property harness (float32, float64) and the kit on a 3x32x32 Glow on CUDA tensors;
# GPU_CHECK_ARGS="--device cpu" is a dry run
gpu-check: install
	$(PY) -m benchmarks.gpu_check $(GPU_CHECK_ARGS)

clean:
	rm -rf .venv docs/_build demo-output .pytest_cache
