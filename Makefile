# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_SECONDS ?= 40
# Test workers: most tests wait on servers and timeouts, so three share two cores. A
# module's tests stay on one worker (--dist loadscope), so a module-scoped fixture (a demo
# run, a broker site) is made once.
PYTEST_WORKERS ?= 3

.PHONY: demo test test-fast lint catalogs system-deps plate-detector plate-recogniser wall-assets edge-bundle collector-bundle clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# One stamp per extra set, remade whenever pyproject.toml changes.
$(VENV)/.installed-demo: pyproject.toml support/pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[demo,api,export,vision]' -e ./support
	$(PY) -m pip install --quiet --no-deps 'rapidocr-onnxruntime>=1.4.4'
	touch $@

$(VENV)/.installed-dev: pyproject.toml support/pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev,demo,api,export,vision]' -e ./support
	$(PY) -m pip install --quiet --no-deps 'rapidocr-onnxruntime>=1.4.4'
	touch $@

demo: $(VENV)/.installed-demo catalogs
	$(PY) scripts/demo.py --duration $(DEMO_SECONDS)

# Offline install bundles (scripts/build_bundle.py): every wheel for the target machine,
# for `BUNDLE=... sudo scripts/install-edge.sh` (or install-collector.sh) with no network.
EDGE_PLATFORM ?= manylinux2014_aarch64
EDGE_EXTRAS ?=
COLLECTOR_PLATFORM ?= manylinux2014_x86_64
edge-bundle: | $(PY)
	$(PY) scripts/build_bundle.py edge --platform $(EDGE_PLATFORM) --extras '$(EDGE_EXTRAS)'

collector-bundle: | $(PY)
	$(PY) scripts/build_bundle.py collector --platform $(COLLECTOR_PLATFORM)

system-deps:
	scripts/install-test-deps.sh

# The Vietnamese catalogs compiled where the code reads them (a wheel compiles its own).
catalogs: | $(PY)
	$(PY) -m pip install --quiet 'babel>=2.18'
	$(PY) scripts/catalogs.py compile

test: lint system-deps catalogs
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope -m "not solo" --durations=20
	$(PY) -m pytest -m solo --durations=5

# The fast tests alone, without the ones that start real servers.
test-fast: lint catalogs
	$(PY) -m pytest -m "not servers"

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Train the plate detector again (fixed seed, CPU, about 40 minutes on 2 cores) and write
# edge_agent/plates/models/plate_detector.onnx; tests use the shipped file and never train.
plate-detector: $(VENV)/.installed-dev
	$(PY) -m pip install --quiet -e '.[train]'
	$(PY) scripts/train_plate_detector.py

# Train the plate recogniser again (fixed seed, CPU, about 50 minutes on 2 cores) and write
# edge_agent/plates/models/plate_recogniser.onnx; tests use the shipped file and never train.
# Its plates are lettered in Debian's narrow sans fonts too, installed here when missing.
plate-recogniser: $(VENV)/.installed-dev
	scripts/install-test-deps.sh --training
	$(PY) -m pip install --quiet -e '.[train]'
	$(PY) scripts/train_plate_recogniser.py

# Vendor the wall's scripts, styles and coastline and the API docs' Swagger UI and Redoc into
# collector/wall/static/vendor/ from web/package-lock.json (needs npm; the files are committed).
wall-assets: | $(PY)
	$(PY) scripts/vendor_web_assets.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build *.egg-info demo-run
