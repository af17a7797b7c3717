"""Alembic environment of the service's migrations (run by ``devtools.migrate``, ``make migrate``).

All of Alembic's bookkeeping is one table, ``contract_drift.schema_migrations``; nothing goes in
``public``. The schema is created here when absent, before Alembic looks for its table.
"""

from alembic import context

from devtools.migrate import SCHEMA, VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the migrations with `make migrate` (python -m devtools.migrate)")

# Checked first: CREATE SCHEMA IF NOT EXISTS would still need CREATE on the database.
if connection.exec_driver_sql("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s", (SCHEMA,)).first() is None:
    connection.exec_driver_sql(f"CREATE SCHEMA {SCHEMA}")
connection.commit()

context.configure(
    connection=connection,
    version_table=VERSION_TABLE,
    version_table_schema=SCHEMA,
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
