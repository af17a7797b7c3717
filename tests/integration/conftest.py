"""Modules marked ``through_pgbouncer`` run every test twice: straight to Postgres, and through
PgBouncer in transaction mode with a pool smaller than their concurrent clients (DESIGN §11.1)."""

from __future__ import annotations

import pytest

DATABASE_ROUTES = ("direct", "pgbouncer")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not metafunc.definition.get_closest_marker("through_pgbouncer") or "database_url" not in metafunc.fixturenames:
        return
    # A test that picks its own route keeps it.
    if any("database_url" in str(mark.args[0]) for mark in metafunc.definition.iter_markers("parametrize")):
        return
    metafunc.parametrize("database_url", DATABASE_ROUTES, indirect=True)
