-- Idempotent DDL for every table of DESIGN §4 (safe to run on every start).
-- Column names and meanings are fixed by the registry that owns the data; extra columns
-- are nullable or defaulted so a row written with only the fixed columns stays valid.

CREATE TABLE IF NOT EXISTS organizations (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    plan        text NOT NULL CHECK (plan IN ('free', 'pro', 'team')),
    limits_json jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS workspaces (
    id     uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES organizations (id)
);
CREATE INDEX IF NOT EXISTS workspaces_org_id_idx ON workspaces (org_id);

CREATE TABLE IF NOT EXISTS org_settings (
    org_id        uuid NOT NULL,
    setting_key   text NOT NULL,
    setting_value jsonb,
    UNIQUE (org_id, setting_key)
);

CREATE TABLE IF NOT EXISTS usage_counters (
    org_id         uuid NOT NULL,
    period_start   date NOT NULL,
    ai_tokens_used bigint NOT NULL DEFAULT 0,
    UNIQUE (org_id, period_start)
);

-- One row per metered LLM call: makes metering idempotent per Lambda request id, so a
-- statement retried after a dropped connection (or a retried invocation) never charges twice.
CREATE TABLE IF NOT EXISTS usage_ledger (
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
CREATE TABLE IF NOT EXISTS usage_reservations (
    request_id   text PRIMARY KEY,
    org_id       uuid NOT NULL,
    period_start date NOT NULL,
    tokens       bigint NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_reservations_org_idx ON usage_reservations (org_id, period_start, expires_at);

CREATE TABLE IF NOT EXISTS runtime_captures (
    id                     bigserial PRIMARY KEY,
    workspace_id           uuid NOT NULL,
    occurred_at            timestamptz NOT NULL DEFAULT now(),
    method                 text NOT NULL,
    path                   text NOT NULL,
    status_code            int,
    request_body           text,
    request_body_encoding  text DEFAULT 'utf8',
    response_body          text,
    response_body_encoding text DEFAULT 'utf8'
);
-- The sampler (DESIGN §7.1). Path index: a literal endpoint's exact path newest first, and a
-- template's literal-prefix range (~>=~ / ~<~, hence text_pattern_ops); the id makes both
-- index-only. Recent index: a hot template's newest-first walk, the pattern filtering the
-- included path. Both replace the older (workspace, upper(method), path, occurred_at) index.
CREATE INDEX IF NOT EXISTS runtime_captures_path_idx
    ON runtime_captures (workspace_id, upper(method), path text_pattern_ops, occurred_at DESC) INCLUDE (id);
CREATE INDEX IF NOT EXISTS runtime_captures_recent_idx
    ON runtime_captures (workspace_id, upper(method), occurred_at DESC) INCLUDE (path, id);
DROP INDEX IF EXISTS runtime_captures_sampler_idx;

CREATE TABLE IF NOT EXISTS graph_nodes (
    graph      text NOT NULL DEFAULT 'default',
    id         uuid NOT NULL,
    ntype      text,
    summary    text,
    props      jsonb NOT NULL DEFAULT '{}',
    tombstoned boolean NOT NULL DEFAULT false,
    PRIMARY KEY (graph, id)
);
-- Seed search: full text over the summary and the property values.
CREATE INDEX IF NOT EXISTS graph_nodes_fts_idx ON graph_nodes USING gin (
    (to_tsvector('simple', coalesce(summary, '') || ' ' || coalesce(jsonb_path_query_array(props, 'strict $.**')::text, '')))
);

CREATE TABLE IF NOT EXISTS graph_edges (
    graph  text NOT NULL DEFAULT 'default',
    id     uuid NOT NULL,
    etype  text,
    src    uuid NOT NULL,
    dst    uuid NOT NULL,
    weight double precision NOT NULL DEFAULT 1.0,
    props  jsonb NOT NULL DEFAULT '{}'
);
-- Hop expansion: edges out of a frontier node, heaviest first, so traverse_answer reads only
-- the few edges it keeps of a hub (index-only walk, LIMIT per node). Replaces the older
-- unordered (graph, src) index, which made a hub's every edge be read and sorted.
CREATE INDEX IF NOT EXISTS graph_edges_expand_idx ON graph_edges (graph, src, weight DESC) INCLUDE (dst, etype);
DROP INDEX IF EXISTS graph_edges_src_idx;
