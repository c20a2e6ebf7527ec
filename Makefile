# Two commands for a new user: `make run` (the whole product) and `make test` (the test suite).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench clean dashboard frontend-test openapi env-example

# The dashboard (frontend/): built by `make run` when its build is missing or older than its sources and Node.js
# is here; without Node.js the product runs without it (the API's `/` then leads to the docs).
NPM          := $(shell command -v npm 2>/dev/null)
FRONTEND_SRC := $(shell find frontend/src frontend/index.html frontend/vite.config.ts frontend/tsconfig.json \
                  frontend/package.json -type f 2>/dev/null)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP) dashboard
	$(BIN)/kalshi-analytics up

dashboard:
ifeq ($(NPM),)
	@if [ -f frontend/dist/index.html ]; then \
	    echo "dashboard: Node.js not found, serving the existing build as it is (install Node.js 20+ to rebuild it)"; \
	else \
	    echo "dashboard: not built: install Node.js 20+ (Debian: apt-get install nodejs npm) and run 'make run' again; everything else runs without it"; \
	fi
else
	@$(MAKE) --no-print-directory frontend/dist/index.html
endif

frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci
	touch $@

frontend/dist/index.html: frontend/node_modules/.package-lock.json $(FRONTEND_SRC)
	cd frontend && npm run build

# The dashboard's type check (tsc, strict) and component tests (Vitest).
frontend-test: frontend/node_modules/.package-lock.json
	cd frontend && npm run typecheck
	cd frontend && npm test

# After an API change: the OpenAPI document the dashboard's client is generated from, and the client.
openapi: $(STAMP) frontend/node_modules/.package-lock.json
	$(BIN)/python -m kalshi_analytics.api.openapi frontend/openapi.json
	cd frontend && npm run generate

# .env.example: every setting with its default and meaning, generated from Settings (a test checks it is current).
env-example: $(STAMP)
	$(BIN)/python -m kalshi_analytics.config_docs env-example > .env.example
	$(BIN)/python -m kalshi_analytics.config_docs reference > docs/configuration.md

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports  # packages depend one way: the layers in pyproject.toml

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

# pytest includes the browser test of the dashboard (tests/e2e), so the build comes first.
test: lint typecheck frontend-test dashboard pytest

bench: $(STAMP)
	$(BIN)/python -m bench.ingest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
