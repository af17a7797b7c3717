-- The functions' runtime privileges (DESIGN §10.2), held by a NOLOGIN role that an operator
-- grants to the functions' login role: exactly what the service's SQL needs, nothing of the
-- registry altered beyond these grants. Roles are cluster-wide, so the role may already exist
-- (another database of the same server): created only when absent.
-- Never queue for long behind the registry's own traffic: fail, and `make migrate` again.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30s';

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'contract_drift_app') THEN
        CREATE ROLE contract_drift_app NOLOGIN;
    END IF;
END
$$;

-- Read: organization context, BYOK and quota settings, the effective plan, samples, the graph.
GRANT SELECT ON public.organizations, public.workspaces, public.org_settings, public.subscriptions,
    public.runtime_captures, public.graph_nodes, public.graph_edges TO contract_drift_app;

-- Metering: the month's row is inserted or incremented in place.
GRANT SELECT, INSERT, UPDATE ON public.usage_counters TO contract_drift_app;

-- The audit trail: append rows. UPDATE on one column only because PostgreSQL requires an UPDATE
-- privilege for SELECT ... FOR UPDATE (locking the org's chain head); the registry's append-only
-- trigger still refuses every real update.
GRANT SELECT, INSERT ON public.audit_logs TO contract_drift_app;
GRANT UPDATE (entry_hash) ON public.audit_logs TO contract_drift_app;
GRANT USAGE ON TYPE public.audit_event_type TO contract_drift_app;

-- The service's own bookkeeping. Not schema_migrations: the functions never read it.
GRANT USAGE ON SCHEMA contract_drift TO contract_drift_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON contract_drift.usage_reservations TO contract_drift_app;
GRANT SELECT, INSERT ON contract_drift.usage_ledger TO contract_drift_app;
