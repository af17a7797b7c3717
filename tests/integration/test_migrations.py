"""DESIGN §10.2 on a real PostgreSQL: the service's migrations next to the registry's tables.

The session database was built like production (devtools/postgres.py): stand-in as the registry
owner, ``make migrate``'s code as that owner, the service logging in as a role holding only
``contract_drift_app``. Tests that need a database of their own create one from the stand-in.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pg8000.exceptions import DatabaseError as PgDatabaseError

from devtools.migrate import LOCK_KEY, MigrationLockTimeout, MigrationResult, head_revision, main, migrate
from devtools.postgres import (
    APP_ROLE,
    DATABASE,
    FUNCTIONS_ROLE,
    REGISTRY_OWNER,
    STAND_IN_PATH,
    EmbeddedPostgres,
    role_url,
)
from devtools.seed import add_capture, make_tenant, tokens_used
from service.db import parse_database_url
from tests.integration.drift_support import call_http, score_body

# What contract_drift_app holds on tables, exactly (DESIGN §10.2).
EXPECTED_TABLE_PRIVILEGES = {
    ("public", "organizations", "SELECT"),
    ("public", "workspaces", "SELECT"),
    ("public", "org_settings", "SELECT"),
    ("public", "subscriptions", "SELECT"),
    ("public", "runtime_captures", "SELECT"),
    ("public", "graph_nodes", "SELECT"),
    ("public", "graph_edges", "SELECT"),
    ("public", "usage_counters", "SELECT"),
    ("public", "usage_counters", "INSERT"),
    ("public", "usage_counters", "UPDATE"),
    ("public", "audit_logs", "SELECT"),
    ("public", "audit_logs", "INSERT"),
    ("contract_drift", "usage_reservations", "SELECT"),
    ("contract_drift", "usage_reservations", "INSERT"),
    ("contract_drift", "usage_reservations", "UPDATE"),
    ("contract_drift", "usage_reservations", "DELETE"),
    ("contract_drift", "usage_ledger", "SELECT"),
    ("contract_drift", "usage_ledger", "INSERT"),
}

# Everything the migrations and the catalog say about the service's objects: a second run must
# leave it identical.
CATALOG_SNAPSHOT_SQL = """
SELECT n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner), coalesce(c.relacl::text, ''),
       coalesce((SELECT string_agg(a.attname || ':' || a.attacl::text, ',' ORDER BY a.attnum)
                 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attacl IS NOT NULL), ''),
       coalesce((SELECT i.indisvalid::text || pg_get_indexdef(i.indexrelid) FROM pg_index i
                 WHERE i.indexrelid = c.oid), '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('public', 'contract_drift')
ORDER BY 1, 2
"""


@pytest.fixture
def fresh_database(postgres: EmbeddedPostgres, superuser_db: Any) -> Iterator[str]:
    """A new database of the same server holding only the registry's stand-in; yields the
    registry owner's URL to it."""
    name = f"registry_{uuid.uuid4().hex[:10]}"
    superuser_db.run(f"CREATE DATABASE {name} OWNER {REGISTRY_OWNER}")
    owner_url = role_url(postgres.superuser_url, REGISTRY_OWNER, name)
    connection = parse_database_url(owner_url).connect()
    try:
        connection.run(STAND_IN_PATH.read_text())
    finally:
        connection.close()
    yield owner_url
    superuser_db.run(f"DROP DATABASE {name} WITH (FORCE)")


@contextlib.contextmanager
def connected(url: str) -> Iterator[Any]:
    connection = parse_database_url(url).connect()
    try:
        yield connection
    finally:
        connection.close()


def test_history_is_contract_drift_schema_migrations_at_head(admin_db):
    assert admin_db.run("SELECT version_num FROM contract_drift.schema_migrations") == [[head_revision()]]
    # Alembic's bookkeeping is that one table: nothing of it anywhere else.
    assert admin_db.run("SELECT count(*) FROM pg_class WHERE relname LIKE 'alembic%'") == [[0]]


def test_public_holds_only_the_registry_tables_and_the_graph(admin_db):
    tables = admin_db.run("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    assert [row[0] for row in tables] == [
        "audit_logs",
        "graph_edges",
        "graph_nodes",
        "hosted_mocks",
        "org_settings",
        "organizations",
        "runtime_captures",
        "subscriptions",
        "usage_counters",
        "users",
        "workspaces",
    ]
    ours = admin_db.run("SELECT tablename FROM pg_tables WHERE schemaname = 'contract_drift' ORDER BY 1")
    assert [row[0] for row in ours] == ["schema_migrations", "usage_ledger", "usage_reservations"]


def test_app_role_holds_exactly_the_runtime_privileges(admin_db):
    role = admin_db.run("SELECT rolcanlogin, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r", r=APP_ROLE)
    assert role == [[False, False, False]]
    granted = admin_db.run(
        """SELECT n.nspname, c.relname, acl.privilege_type
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                aclexplode(c.relacl) AS acl
           WHERE acl.grantee = CAST(:role AS regrole)""",
        role=APP_ROLE,
    )
    assert {tuple(row) for row in granted} == EXPECTED_TABLE_PRIVILEGES
    columns = admin_db.run(
        """SELECT c.relname, a.attname, acl.privilege_type
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid, aclexplode(a.attacl) AS acl
           WHERE acl.grantee = CAST(:role AS regrole)""",
        role=APP_ROLE,
    )
    assert columns == [["audit_logs", "entry_hash", "UPDATE"]]
    assert admin_db.run(
        "SELECT has_type_privilege(:r, 'audit_event_type', 'USAGE'),"
        " has_schema_privilege(:r, 'contract_drift', 'USAGE'), has_schema_privilege(:r, 'contract_drift', 'CREATE')",
        r=APP_ROLE,
    ) == [[True, True, False]]


def test_functions_role_is_least_privilege(admin_db):
    role = admin_db.run(
        "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = :r", r=FUNCTIONS_ROLE
    )
    assert role == [[False, False, False, False]]
    memberships = admin_db.run(
        "SELECT m.roleid::regrole::text FROM pg_auth_members m WHERE m.member = CAST(:r AS regrole)", r=FUNCTIONS_ROLE
    )
    assert memberships == [[APP_ROLE]]


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT count(*) FROM users",
        "SELECT count(*) FROM hosted_mocks",
        "UPDATE organizations SET plan = 'team'",
        "DELETE FROM usage_counters",
        "INSERT INTO org_settings (id, org_id, setting_key, setting_value) VALUES "
        "(gen_random_uuid(), gen_random_uuid(), 'byok', '{}')",
        "TRUNCATE runtime_captures",
        "SELECT count(*) FROM contract_drift.schema_migrations",
        "CREATE TABLE public.scratch (id int)",
        "CREATE TABLE contract_drift.scratch (id int)",
    ],
)
def test_functions_role_is_refused_what_it_does_not_need(postgres, statement):
    with connected(postgres.url) as connection, pytest.raises(PgDatabaseError) as refused:
        connection.run(statement)
    assert refused.value.args[0]["C"] == "42501"


def test_audit_rows_can_be_locked_but_never_updated_or_deleted(postgres, admin_db):
    org_id = uuid.uuid4()
    with connected(postgres.url) as connection:
        connection.run("BEGIN")
        connection.run("SELECT set_config('app.current_org_id', :org, true)", org=str(org_id))
        connection.run(
            "INSERT INTO audit_logs (org_id, event_type, description) VALUES (:org, 'ai_usage', 'probe')", org=org_id
        )
        # FOR UPDATE needs the UPDATE privilege on one column: granted, so the chain head can be locked.
        assert len(connection.run("SELECT id FROM audit_logs WHERE org_id = :org FOR UPDATE", org=org_id)) == 1
        with pytest.raises(PgDatabaseError) as refused:
            connection.run("UPDATE audit_logs SET entry_hash = 'x' WHERE org_id = :org", org=org_id)
        assert "append-only" in refused.value.args[0]["M"]
        connection.run("ROLLBACK")
        # Row-level security binds the service too: without the org set, it sees no row.
        connection.run("BEGIN")
        connection.run("SELECT set_config('app.current_org_id', :org, true)", org=str(org_id))
        connection.run(
            "INSERT INTO audit_logs (org_id, event_type, description) VALUES (:org, 'ai_usage', 'probe')", org=org_id
        )
        connection.run("COMMIT")
        assert connection.run("SELECT count(*) FROM audit_logs") == [[0]]
        with pytest.raises(PgDatabaseError) as refused:
            connection.run("DELETE FROM audit_logs")  # no DELETE privilege at all
        assert refused.value.args[0]["C"] == "42501"


def test_a_second_run_changes_nothing(postgres, admin_db):
    before = admin_db.run(CATALOG_SNAPSHOT_SQL)
    result = migrate(postgres.owner_url)
    assert (result.before, result.after, result.changed) == (head_revision(), head_revision(), False)
    assert admin_db.run(CATALOG_SNAPSHOT_SQL) == before


def test_make_migrate_entry_point_reports_up_to_date(postgres, capsys):
    assert main(["--database-url", postgres.owner_url]) == 0
    assert capsys.readouterr().out.strip() == f"up to date at {head_revision()}"


def test_a_fresh_registry_database_is_migrated_to_head(fresh_database):
    result = migrate(fresh_database)
    assert (result.before, result.after) == (None, head_revision())
    with connected(fresh_database) as connection:
        indexes = connection.run(
            """SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               WHERE i.indrelid = CAST('public.runtime_captures' AS regclass) ORDER BY 1"""
        )
    assert indexes == [
        ["runtime_captures_deployment_id_capture_id_key", True],
        ["runtime_captures_path_idx", True],
        ["runtime_captures_pkey", True],
        ["runtime_captures_recent_idx", True],
    ]


def test_concurrent_runs_wait_for_the_lock_and_the_loser_changes_nothing(fresh_database):
    # While another run holds the lock, a run does not start; it gives up after its wait.
    with connected(fresh_database) as holder:
        holder.run("SELECT pg_advisory_lock(hashtextextended(:key, 0))", key=LOCK_KEY)
        with pytest.raises(MigrationLockTimeout):
            migrate(fresh_database, lock_wait_s=0.5)
        with connected(fresh_database) as connection:
            assert connection.run("SELECT to_regclass('contract_drift.schema_migrations')") == [[None]]
    # Two runs at once: one migrates, the other waits for it and finds nothing left to do.
    gate = threading.Barrier(2)

    def run() -> MigrationResult:
        gate.wait()
        return migrate(fresh_database, lock_wait_s=120)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = [future.result() for future in [pool.submit(run), pool.submit(run)]]
    assert sorted((r.before or "", r.after) for r in results) == [
        ("", head_revision()),
        (head_revision(), head_revision()),
    ]


def test_an_invalid_index_left_by_a_failed_concurrent_build_is_rebuilt(fresh_database):
    with connected(fresh_database) as connection:
        tenant = make_tenant(connection, "pro")
        add_capture(connection, tenant.workspace_id, "GET", "/a")
        # A concurrent build that fails half-way (here: division by zero) leaves an INVALID
        # index under the name the migration uses.
        with pytest.raises(PgDatabaseError, match="division by zero"):
            connection.run("CREATE INDEX CONCURRENTLY runtime_captures_path_idx ON runtime_captures ((1 / (id - id)))")
        assert connection.run(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = CAST('runtime_captures_path_idx' AS regclass)"
        ) == [[False]]
    migrate(fresh_database)
    with connected(fresh_database) as connection:
        valid, definition = connection.run(
            """SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i
               WHERE i.indexrelid = CAST('runtime_captures_path_idx' AS regclass)"""
        )[0]
    assert valid is True
    assert "text_pattern_ops" in definition and "INCLUDE (id)" in definition


@contextlib.contextmanager
def renamed(admin_db: Any, statement: str, undo: str) -> Iterator[None]:
    admin_db.run(statement)
    try:
        yield
    finally:
        admin_db.run(undo)


@pytest.mark.parametrize(
    ("rename", "undo"),
    [
        (
            "ALTER SCHEMA contract_drift RENAME TO contract_drift_elsewhere",
            "ALTER SCHEMA contract_drift_elsewhere RENAME TO contract_drift",
        ),
        (
            "ALTER TABLE contract_drift.usage_reservations RENAME TO usage_reservations_elsewhere",
            "ALTER TABLE contract_drift.usage_reservations_elsewhere RENAME TO usage_reservations",
        ),
    ],
    ids=["no-schema", "no-table"],
)
def test_missing_migrations_are_a_500_naming_make_migrate_and_charge_nothing(
    service_env, admin_db, llm_server, rename, undo
):
    tenant = make_tenant(admin_db, "pro", {"ai_tokens_per_month": 100_000})
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    with renamed(admin_db, rename, undo):
        status, body = call_http(score_body(tenant, [("GET", "/a")]))
    assert (status, body["error_code"]) == (500, "DATABASE_ERROR")
    assert "make migrate" in body["error"]
    assert llm_server.requests == []
    assert tokens_used(admin_db, tenant.org_id) == 0


def test_a_login_role_without_the_app_role_is_told_to_grant_it(service_env, admin_db, superuser_db, monkeypatch):
    from service.db import database
    from tests.conftest import reset_service_caches

    tenant = make_tenant(admin_db, "pro", {"ai_tokens_per_month": 100_000})
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    role = f"ungranted_{uuid.uuid4().hex[:8]}"
    superuser_db.run(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
    try:
        monkeypatch.setenv("DATABASE_URL", role_url(service_env["DATABASE_URL"], role, DATABASE))
        database.close()
        reset_service_caches()
        status, body = call_http(score_body(tenant, [("GET", "/a")]))
        assert (status, body["error_code"]) == (500, "DATABASE_ERROR")
        assert "grant contract_drift_app" in body["error"]
    finally:
        database.close()
        superuser_db.run(f"DROP ROLE {role}")
