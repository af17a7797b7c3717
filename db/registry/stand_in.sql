-- Stand-in of the mockforge registry's tables (DESIGN §10.1), for tests, `make run` and `make bench`.
--
-- NOT a migration of this service: in production the registry creates these tables with its own
-- migrations, and this service never changes them. Written here from the facts §10.1 states (not
-- copied from the registry), so a row the service reads looks like a row the registry writes:
-- the NOT NULL columns, the foreign keys, and no default that §10.1 does not state. Where §10.1
-- is silent (a column's nullability, a foreign key it does not list), the stand-in takes the
-- stricter reading that the service cannot rely on. The registry's tables have more columns than
-- these; the service reads none of them.
--
-- Run once on an empty database by the registry's owner role (not a superuser), as the registry's
-- migrations would be: every object below is owned by that role. devtools/postgres.py runs it.

CREATE TABLE users (
    id uuid PRIMARY KEY
);

CREATE TABLE organizations (
    id          uuid PRIMARY KEY,
    name        varchar(255) NOT NULL,
    slug        varchar(255) NOT NULL UNIQUE,
    owner_id    uuid NOT NULL REFERENCES users (id),
    plan        varchar(50) NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro', 'team')),
    limits_json jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE workspaces (
    id         uuid PRIMARY KEY,
    org_id     uuid NOT NULL REFERENCES organizations (id),
    name       varchar(255) NOT NULL,
    created_by uuid NOT NULL REFERENCES users (id),
    UNIQUE (org_id, name)
);

-- §10.1 lists no foreign key on org_id here; none is assumed.
CREATE TABLE org_settings (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL,
    setting_key   varchar(255) NOT NULL,
    setting_value jsonb NOT NULL,
    UNIQUE (org_id, setting_key)
);

-- No default on id (§10.1 states none): whoever inserts a month's row supplies it. updated_at is
-- NOT NULL without a default, and the trigger only maintains it on UPDATE, so an insert must
-- also write it: the strict reading of "an updated_at trigger".
CREATE TABLE usage_counters (
    id             uuid PRIMARY KEY,
    org_id         uuid NOT NULL REFERENCES organizations (id),
    period_start   date NOT NULL,
    requests       bigint,
    egress_bytes   bigint,
    storage_bytes  bigint,
    ai_tokens_used bigint NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL,
    UNIQUE (org_id, period_start)
);

CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER usage_counters_set_updated_at
    BEFORE UPDATE ON usage_counters
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Billing state written by the registry from Stripe webhooks (§10.3.2 reads the latest by created_at).
CREATE TABLE subscriptions (
    id                     uuid PRIMARY KEY,
    org_id                 uuid NOT NULL,
    stripe_subscription_id varchar(255) NOT NULL UNIQUE,
    stripe_customer_id     varchar(255) NOT NULL,
    price_id               varchar(255) NOT NULL,
    plan                   varchar(50) NOT NULL,
    status                 varchar(50) NOT NULL CHECK (status IN (
        'active', 'trialing', 'past_due', 'canceled', 'unpaid', 'incomplete', 'incomplete_expired'
    )),
    current_period_start   timestamptz NOT NULL,
    current_period_end     timestamptz NOT NULL,
    cancel_at_period_end   boolean NOT NULL,
    canceled_at            timestamptz,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL
);

-- A hosted mock deployment: every runtime capture belongs to one.
CREATE TABLE hosted_mocks (
    id          uuid PRIMARY KEY,
    org_id      uuid NOT NULL,
    name        varchar(255) NOT NULL,
    slug        varchar(255) NOT NULL,
    config_json jsonb NOT NULL
);

-- Written by the recorder. Its only indexes here are the registry's stated ones: the primary key
-- and unique (deployment_id, capture_id). The registry very likely also indexes captures by
-- deployment and time for its own capture list, but §10.1 does not state it, so the stand-in
-- leaves it out (the unique index already leads with deployment_id). The sampler's indexes are
-- this service's, created by its own migrations (db/migrations), never here.
CREATE TABLE runtime_captures (
    id                     bigserial PRIMARY KEY,
    deployment_id          uuid NOT NULL REFERENCES hosted_mocks (id),
    capture_id             text NOT NULL,
    protocol               text NOT NULL,
    occurred_at            timestamptz NOT NULL,
    method                 text NOT NULL,
    path                   text NOT NULL,
    query_params           text,
    request_headers        text NOT NULL,
    request_body           text,
    request_body_encoding  text NOT NULL,
    status_code            integer,
    response_status_code   integer,
    response_headers       text,
    response_body          text,
    response_body_encoding text,
    workspace_id           uuid,
    source                 text NOT NULL DEFAULT 'hosted',
    UNIQUE (deployment_id, capture_id)
);

-- The registry's audit trail: append-only, hash-chained per org (§10.3.5), row-level secured.
CREATE TYPE audit_event_type AS ENUM (
    'login',
    'logout',
    'org_created',
    'org_updated',
    'member_invited',
    'member_removed',
    'role_changed',
    'settings_changed',
    'api_key_created',
    'api_key_revoked',
    'billing_changed',
    'deployment_created',
    'deployment_deleted',
    'ai_usage'
);

CREATE TABLE audit_logs (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL,
    user_id     uuid,
    event_type  audit_event_type NOT NULL,
    description text NOT NULL,
    metadata    jsonb,
    ip_address  varchar(45),
    user_agent  text,
    created_at  timestamptz,
    prev_hash   text,
    entry_hash  text
);

CREATE FUNCTION audit_logs_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_logs is append-only: % refused', TG_OP;
END;
$$;

CREATE TRIGGER audit_logs_append_only
    BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_refuse_change();

-- FORCE: the policy binds the table's owner too, so only a session that set app.current_org_id
-- (transaction-scoped, §11.1) sees or writes that org's rows; unset or empty sees nothing.
ALTER TABLE audit_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_logs FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_logs_org_isolation ON audit_logs
    USING (org_id = nullif(current_setting('app.current_org_id', true), '')::uuid);
