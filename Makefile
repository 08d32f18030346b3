# Every target makes its own virtualenv on first use, so a fresh machine needs
# nothing but python3 (3.11+) and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo mesh test fuzz lint bench schema docs clean tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	@PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/demo.sh

# A real Kilo mesh in network namespaces, watched live while a node joins and a git push
# moves a leader (root; Kilo's agent from KILO_KG, else ../shared/kilo/kg).
mesh: $(STAMP)
	@if [ -z "$${KILO_KG:-}" ] && [ -x ../shared/kilo/kg ]; then \
	  KILO_KG="$$(cd ../shared/kilo && pwd)/kg"; export KILO_KG; fi; \
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m tests.mesh.live

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Mermaid's own parser (npm: mermaid, jsdom) checks the diagrams topoctl draws; the tests
# skip, saying why, where npm is missing. .ci/run also installs Graphviz for `dot -Tsvg`.
MERMAID := tests/mermaid/node_modules/.package-lock.json

$(MERMAID): tests/mermaid/package.json tests/mermaid/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix tests/mermaid --no-audit --no-fund --loglevel=error \
		|| echo "npm ci failed: the Mermaid syntax checks will be skipped"; \
	else echo "npm not found: the Mermaid syntax checks will be skipped"; fi

tools: $(MERMAID)

test: lint tools
	$(BIN)/pytest

# Long random runs of the property tests (random seeds, thousands of examples each);
# `make test` runs the same tests with fixed seeds and bounded counts.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -p no:cacheprovider tests/test_topology_properties.py tests/test_yamldoc_fast.py

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

schema: $(STAMP)
	$(BIN)/topoctl schema > schema/topology.schema.json

docs: $(STAMP)
	$(BIN)/python -c 'import sys; from reconciler.core.rendering.reference import reference_markdown; sys.stdout.write(reference_markdown())' > docs/topology-reference.md

clean:
	rm -rf $(VENV) .venv-checkov .mypy_cache .pytest_cache .ruff_cache .hypothesis
