# Strongroom: the two commands that matter are `make serve` and `make test`.
VENV    ?= .venv
PY      := $(VENV)/bin/python
DATA    ?= var
HOST    ?= 127.0.0.1
PORT    ?= 8080

.PHONY: serve test fuzz lint typecheck unit bench deps dev-deps lock clean

deps:
	@scripts/bootstrap $(VENV)

dev-deps:
	@scripts/bootstrap $(VENV) dev

## make lock: pin every dependency (with hashes) from pyproject.toml's ranges; bootstrap installs from these
lock: dev-deps
	$(VENV)/bin/python -m pip install -q uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes -q -o requirements/dev.lock
	@# the runtime locks take the dev lock's versions: what is served is what the tests ran
	@# (runtime: SQLite only; postgres: with the [postgres] extra, for database_url and deploy/Containerfile)
	$(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes -q -c requirements/dev.lock -o requirements/runtime.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra postgres --universal --python-version 3.11 --generate-hashes -q -c requirements/dev.lock -o requirements/postgres.lock

## make serve: create the embedded default under ./var on first run, then serve the API
serve: deps
	@$(PY) -m strongroom --data-dir $(DATA) init
	@exec $(PY) -m strongroom --data-dir $(DATA) serve --host $(HOST) --port $(PORT)

## make test: lint, type-check and run the whole suite (what CI runs)
test: dev-deps
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q

## make fuzz: the long schema fuzz over HTTP (FUZZ_CASES requests in total; prints the cases and the 5xx)
FUZZ_CASES ?= 10000
fuzz: dev-deps
	STRONGROOM_FUZZ_CASES=$(FUZZ_CASES) $(VENV)/bin/pytest -q -m fuzz -p no:cacheprovider tests/fuzz

## make bench: end-to-end throughput and latency against the bare floor, policies, scale (run by hand);
## ends with a summary: one line per signing path, policies_100_ms, the scale table
BENCH_WORKERS ?= 2
bench: dev-deps
	$(PY) bench/bench_all.py --workers $(BENCH_WORKERS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
