"""The sampler's indexes on runtime_captures, built CONCURRENTLY outside any transaction."""

from alembic import op

from devtools.migrate import drop_invalid_indexes, outside_transaction, sampler_index_statements

revision = "0003"
down_revision = "0002"

INDEXES = ("runtime_captures_path_idx", "runtime_captures_recent_idx")


def upgrade() -> None:
    with outside_transaction():
        # A build that failed (cancelled, lock conflict, duplicate...) left an INVALID index that
        # CREATE ... IF NOT EXISTS would keep as it is: drop it, then build again.
        drop_invalid_indexes(INDEXES)
        for statement in sampler_index_statements():  # db/migrations/sql/0003_sampler_indexes.sql
            op.get_bind().exec_driver_sql(statement)
