"""Schema contract_drift with the quota reservations and the metering ledger."""

from devtools.migrate import run_sql_file

revision = "0001"
down_revision = None


def upgrade() -> None:
    run_sql_file("0001_contract_drift_schema.sql")
