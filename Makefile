# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_SECONDS ?= 40

.PHONY: demo test test-fast lint system-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# One stamp per extra set, remade whenever pyproject.toml changes.
$(VENV)/.installed-demo: pyproject.toml support/pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[demo,export,vision]' -e ./support
	$(PY) -m pip install --quiet --no-deps 'rapidocr-onnxruntime>=1.4.4'
	touch $@

$(VENV)/.installed-dev: pyproject.toml support/pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev,demo,api,export,vision]' -e ./support
	$(PY) -m pip install --quiet --no-deps 'rapidocr-onnxruntime>=1.4.4'
	touch $@

demo: $(VENV)/.installed-demo
	$(PY) scripts/demo.py --duration $(DEMO_SECONDS)

system-deps:
	scripts/install-test-deps.sh

test: lint system-deps
	$(PY) -m pytest --durations=20

# The fast tests alone, without the ones that start real servers.
test-fast: lint
	$(PY) -m pytest -m "not servers"

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build *.egg-info demo-run
