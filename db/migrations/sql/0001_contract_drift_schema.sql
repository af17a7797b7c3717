-- The service's own schema: the drift scorer's bookkeeping lives here, next to (never inside)
-- the registry's tables. The migration runner creates the schema itself before the first
-- revision (its history table contract_drift.schema_migrations lives here too); this statement
-- states it for a reader and is a no-op then.
-- Never queue for long behind the registry's own traffic: fail, and `make migrate` again.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30s';

CREATE SCHEMA IF NOT EXISTS contract_drift;

-- One row per metered LLM call: makes metering idempotent per Lambda request id, so a
-- statement retried after a dropped connection (or a retried invocation) never charges twice.
CREATE TABLE IF NOT EXISTS contract_drift.usage_ledger (
    request_id   text PRIMARY KEY,
    org_id       uuid NOT NULL,
    period_start date NOT NULL,
    tokens       bigint NOT NULL,
    charged_at   timestamptz NOT NULL DEFAULT now()
);

-- Platform calls in flight, each holding an upper estimate of its tokens: a call is admitted only
-- while used + in flight stays below the month's limit, so a concurrent burst at the boundary
-- overshoots by at most about one call. A reservation is released when its call settles or
-- fails; one left by a crashed invocation stops counting at expires_at.
CREATE TABLE IF NOT EXISTS contract_drift.usage_reservations (
    request_id   text PRIMARY KEY,
    org_id       uuid NOT NULL,
    period_start date NOT NULL,
    tokens       bigint NOT NULL,
    expires_at   timestamptz NOT NULL
);

-- The table is this revision's own, new and empty: there is no writer to block.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS usage_reservations_org_idx
    ON contract_drift.usage_reservations (org_id, period_start, expires_at);
