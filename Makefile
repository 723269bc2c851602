# The two commands of the README: `make run` and `make test`. Both install requirements-dev.txt
# (the service plus test, lint and benchmark tools) into .venv when it changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: run test lint bench fuzz install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

## Start the API (waitress on 127.0.0.1:$(PORT)) and a worker on the embedded default; Ctrl-C stops both.
run: install
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi serve --port $(PORT)

# hls.js for the real-browser test, when npm is there (the test skips without it, and without Chromium).
tests/browser/node_modules: tests/browser/package-lock.json
	-command -v npm >/dev/null && npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

## Run the test suite with coverage (SQLite; PostgreSQL + Redis when TEST_DATABASE_URL / TEST_REDIS_URL are set).
test: install tests/browser/node_modules
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

## Benchmarks: transcoding, serving and catalogue, side by side (minutes, not seconds).
bench: install
	$(BIN)/python -m bench

## Long robustness runs (minutes): schemathesis with 250 cases per operation and mode (about
## 12,000 requests, signed in and not), then ten SIGKILLs of a real worker mid-transcode.
fuzz: install
	FUZZ_EXAMPLES=250 $(BIN)/python -m pytest tests/test_openapi.py -k fuzzed -s --no-cov -q -p no:randomly
	FAULT_KILLS=10 $(BIN)/python -m pytest tests/test_faults.py -k killed --no-cov -q -p no:randomly

clean:
	rm -rf $(VENV) .pytest_cache .coverage htmlcov
