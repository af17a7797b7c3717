"""The NOLOGIN role contract_drift_app with exactly the functions' runtime privileges."""

from devtools.migrate import run_sql_file

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    run_sql_file("0004_app_role.sql")
