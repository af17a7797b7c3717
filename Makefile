# Two commands do everything on a fresh machine:
#   make run    both functions behind a local HTTP API on an embedded Postgres, with demo data
#   make test   lint, types, the whole pytest suite, and the SAM checks (sam validate --lint,
#               cfn-lint, sam build) -- exactly what .ci/run runs
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
SAM_ENV := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 PYENV_VERSION=3.11.7:3.12.1:3.13.0
SAM_BUILD_DIR ?= .aws-sam/build
# The ASL interpreter the tests and `make run-state-machine` execute state machines on (Node >= 20).
SFN_DIR := devtools/stepfunctions
SFN_DEPS := $(SFN_DIR)/node_modules/.installed

.PHONY: run test lint typecheck pytest sam-check invoke run-state-machine bench clean migrate system-deps

# Debian packages the tests start as real servers (DESIGN §11): PgBouncer in transaction mode, and a
# PostgreSQL built with TLS (the embedded one is not). Installed once; a no-op when both are there.
# apt-get needs root (CI); elsewhere install them yourself: apt-get install pgbouncer postgresql.
system-deps:
	@if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then have_bouncer=1; fi; \
	if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then have_postgres=1; fi; \
	if [ -z "$$have_bouncer" ] || [ -z "$$have_postgres" ]; then \
		echo "installing pgbouncer and postgresql (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbouncer postgresql; \
	fi

$(VENV)/.installed: requirements-dev.txt layers/shared/requirements.txt layers/shared/requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	touch $@

$(SFN_DEPS): $(SFN_DIR)/package.json $(SFN_DIR)/package-lock.json
	cd $(SFN_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The local stack starts its own embedded Postgres and applies the migrations to it first
# (devtools.postgres.start_postgres runs the same devtools.migrate as `make migrate`).
run: $(VENV)/.installed
	$(VENV)/bin/python -m devtools.local_api $(ARGS)

# The service's own schema objects (DESIGN §10.2) on the database at DATABASE_URL, as the owner
# of the registry's tables: make migrate DATABASE_URL=postgresql://owner@host:5432/mockforge
migrate: $(VENV)/.installed
	$(VENV)/bin/python -m devtools.migrate

# make invoke FUNCTION=ContractDriftFunction EVENT=events/contract_drift_http.json [ARGS=--no-stack]
invoke: $(VENV)/.installed
	$(VENV)/bin/python -m devtools.invoke $(FUNCTION) $(EVENT) $(ARGS)

# make run-state-machine INPUT=events/score_spec_state_machine.json [ARGS='--llm-endpoint URL ...']
# ScoreSpecStateMachine from template.yaml on aws-local-stepfunctions, against the stack of `make run`.
INPUT ?= events/score_spec_state_machine.json
run-state-machine: $(VENV)/.installed $(SFN_DEPS)
	$(VENV)/bin/python -m devtools.stepfunctions $(INPUT) $(ARGS)

test: lint typecheck pytest sam-check

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/squawk db/migrations/sql/*.sql

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy layers/shared functions devtools

pytest: $(VENV)/.installed $(SFN_DEPS) system-deps
	$(VENV)/bin/pytest

# The template as it is, then a copy whose defaults switch the RDS Proxy and reserved concurrency on
# (sam validate and cfn-lint take no parameter values); sam build resolves no parameters.
PROXY_TEMPLATE := .aws-sam/template-proxy-on.json
sam-check: $(SAM_VENV)/.installed $(VENV)/.installed
	$(SAM_ENV) $(SAM_VENV)/bin/sam validate --lint
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/python -m devtools.template_variants proxy-on $(PROXY_TEMPLATE)
	$(SAM_ENV) $(SAM_VENV)/bin/sam validate --lint -t $(PROXY_TEMPLATE)
	$(SAM_VENV)/bin/cfn-lint $(PROXY_TEMPLATE)
	$(SAM_ENV) $(SAM_VENV)/bin/sam build --build-dir $(SAM_BUILD_DIR)

# Every benchmark of docs/benchmarks.md at full size (about twenty minutes on 2 cores; rewrites that file).
# Not part of `make test`, which runs the smoke sizes (tests/integration/test_bench_smoke.py).
bench: $(VENV)/.installed $(SAM_VENV)/.installed
	$(VENV)/bin/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache $(SFN_DIR)/node_modules
