"""traverse_answer's graph tables and their indexes, when absent."""

from devtools.migrate import run_sql_file

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    run_sql_file("0002_graph_tables.sql")
