"""${message}"""

from devtools.migrate import run_sql_file

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}


def upgrade() -> None:
    # The revision's SQL: db/migrations/sql/<revision>_<name>.sql (see db/migrations/README.md).
    run_sql_file("${up_revision}_${message.lower().replace(' ', '_')}.sql")
