"""``make migrate``: the service's own database objects (DESIGN §10.2), applied with Alembic.

Usage: ``DATABASE_URL=postgresql://owner@host/db python -m devtools.migrate`` (or ``make migrate``),
as the owner of the registry's tables (it builds indexes on ``runtime_captures`` and grants on
them) with CREATEROLE, and CREATE on the database for the ``contract_drift`` schema.

Why Alembic (over yoyo-migrations, the other candidate):

- it runs on pg8000, the driver the service already uses (yoyo needs psycopg), so no second
  PostgreSQL driver and the same ``DATABASE_URL`` forms (unix socket ``?host=/dir``, ``sslmode``);
- its only bookkeeping is one version table whose name and schema are options
  (``contract_drift.schema_migrations``); yoyo keeps four tables (log, lock, version, history)
  that it can only move by rewriting ``search_path`` for every migration it runs;
- a revision can leave the transaction for one block (``autocommit_block``), which is what
  ``CREATE INDEX CONCURRENTLY`` needs, and run Python first: a concurrent build that failed
  leaves an INVALID index under its name, and the revision drops it before building again.

The SQL itself lives in ``db/migrations/sql/NNNN_*.sql`` (linted by squawk); each revision in
``db/migrations/versions`` runs its file. Each revision gets its own transaction
(``transaction_per_migration``), so the non-transactional one commits nothing half-done.

Concurrent runs serialize on a session advisory lock held by a second connection of the
runner's own. It is taken by polling ``pg_try_advisory_lock`` rather than waiting in
``pg_advisory_lock``: a waiting statement holds a snapshot, and ``CREATE INDEX CONCURRENTLY``
in the run holding the lock waits for every older snapshot to go away, a deadlock.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pg8000.dbapi
from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from service.db import ConnectionParams, parse_database_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "db" / "migrations"
SQL_DIR = MIGRATIONS_DIR / "sql"
SCHEMA = "contract_drift"
VERSION_TABLE = "schema_migrations"
# hashtextextended() of this key is the advisory lock every `make migrate` takes.
LOCK_KEY = "contract_drift.migrate"
LOCK_POLL_SECONDS = 0.2
DEFAULT_LOCK_WAIT_SECONDS = 900.0


class MigrationLockTimeout(RuntimeError):
    """Another ``make migrate`` held the lock for longer than this run would wait."""


@dataclass(frozen=True)
class MigrationResult:
    """The revision before and after the run (``None``: no revision applied yet)."""

    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _dbapi_connect(params: ConnectionParams) -> Any:
    """A DB-API pg8000 connection (what SQLAlchemy, hence Alembic, drives) for ``params``."""
    return pg8000.dbapi.connect(
        user=params.user,
        password=params.password,
        database=params.database,
        host=params.host or "localhost",
        port=params.port,
        unix_sock=params.unix_sock,
        ssl_context=params.ssl_context(),
        application_name="contract-drift-migrate",
    )


def _acquire_lock(connection: Any, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    announced = False
    while not connection.run("SELECT pg_try_advisory_lock(hashtextextended(:key, 0))", key=LOCK_KEY)[0][0]:
        if time.monotonic() >= deadline:
            raise MigrationLockTimeout(f"another `make migrate` still holds the lock after {wait_s:.0f} s")
        if not announced:
            print("waiting for another `make migrate` to finish ...", file=sys.stderr, flush=True)
            announced = True
        time.sleep(LOCK_POLL_SECONDS)


def _current_revision(connection: Any) -> str | None:
    context = MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE, "version_table_schema": SCHEMA}
    )
    return context.get_current_revision()


def migrate(url: str, *, lock_wait_s: float = DEFAULT_LOCK_WAIT_SECONDS) -> MigrationResult:
    """Bring the database at ``url`` to the head revision; a second run changes nothing."""
    params = parse_database_url(url)
    lock_connection = params.connect()
    try:
        _acquire_lock(lock_connection, lock_wait_s)
        engine = create_engine("postgresql+pg8000://", creator=partial(_dbapi_connect, params), poolclass=NullPool)
        try:
            with engine.connect() as connection:
                before = _current_revision(connection)
                connection.commit()
                config = alembic_config()
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                after = _current_revision(connection)
                connection.commit()
        finally:
            engine.dispose()
    finally:
        lock_connection.close()  # ends the session, which releases its advisory lock
    return MigrationResult(before, after)


# --- used by the revisions in db/migrations/versions ------------------------------------------


@contextlib.contextmanager
def outside_transaction() -> Iterator[None]:
    """Alembic's ``autocommit_block``, made to hold on pg8000.

    Entering it, SQLAlchemy's pg8000 dialect reads the isolation level with a ``SHOW`` that opens
    a DB-API transaction and leaves it open; the switch to autocommit then happens inside it, and
    ``CONCURRENTLY`` refuses to run. That transaction only read: roll it back (pg8000 does nothing
    when none is open).
    """
    with op.get_context().autocommit_block():
        op.get_bind().connection.dbapi_connection.rollback()  # type: ignore[union-attr]
        yield


def run_sql_file(name: str) -> None:
    """Run ``db/migrations/sql/<name>`` whole, in the revision's transaction."""
    op.get_bind().exec_driver_sql((SQL_DIR / name).read_text())


def sql_statements(text: str) -> list[str]:
    """The statements of a plain SQL file, one by one (comments dropped).

    For the non-transactional files only, whose statements hold no ``;`` and no ``--`` of their
    own (a function body or a string literal would be cut):
    PostgreSQL runs a multi-statement string as one transaction block, which ``CONCURRENTLY``
    refuses.
    """
    without_comments = re.sub(r"--[^\n]*", "", text)
    return [statement.strip() for statement in without_comments.split(";") if statement.strip()]


SAMPLER_INDEXES_SQL = "0003_sampler_indexes.sql"


def sampler_index_statements() -> list[str]:
    """The sampler-index builds of revision 0003, one statement each (the benchmarks rebuild the
    indexes with them after a bulk load, exactly as the migration builds them)."""
    return sql_statements((SQL_DIR / SAMPLER_INDEXES_SQL).read_text())


def drop_invalid_indexes(names: tuple[str, ...], schema: str = "public") -> None:
    """Drop the INVALID leftovers of failed concurrent builds among ``names``.

    Safe only under the migration lock: an index being built concurrently right now is
    INVALID too, and no other ``make migrate`` can be building one.
    """
    bind = op.get_bind()
    rows = bind.exec_driver_sql(
        """SELECT c.relname FROM pg_catalog.pg_index i
           JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = %s AND c.relname = ANY(%s) AND NOT i.indisvalid""",
        (schema, list(names)),
    ).fetchall()
    for (name,) in rows:
        print(f"dropping INVALID index {schema}.{name} left by a failed build", file=sys.stderr, flush=True)
        bind.exec_driver_sql(f'DROP INDEX CONCURRENTLY IF EXISTS "{schema}"."{name}"')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL")
    parser.add_argument("--lock-wait", type=float, default=DEFAULT_LOCK_WAIT_SECONDS, help="seconds (default 900)")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("DATABASE_URL is not set (postgresql://owner@host:port/db)")
    result = migrate(args.database_url, lock_wait_s=args.lock_wait)
    if result.changed:
        print(f"migrated {result.before or '(empty)'} -> {result.after} (head)")
    else:
        print(f"up to date at {result.after}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
