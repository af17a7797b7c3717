"""``Database.query(..., tx_settings=...)``: settings that live for one transaction only (DESIGN §11.1).

Behind a transaction pooler the next transaction on a server connection may be another
function's: a setting must end with the transaction that made it.
"""

from __future__ import annotations

from typing import Any

import pytest

from service.db import Database
from service.errors import DatabaseError

SHOW = "SELECT current_setting('app.current_org_id', true), current_setting('lock_timeout')"


@pytest.fixture
def db(service_env: dict[str, str]) -> Any:
    database = Database()
    yield database
    database.close()


def test_settings_hold_inside_the_transaction_and_end_with_it(db: Database):
    before = db.query(SHOW)[0]
    inside = db.query(SHOW, tx_settings={"app.current_org_id": "org-1", "lock_timeout": "1500ms"})[0]
    after = db.query(SHOW)[0]
    assert inside == ["org-1", "1500ms"]
    # a custom setting once made leaves an empty placeholder in the session: empty is "unset"
    assert after[0] in (None, "") and after[1] == before[1]


def test_settings_and_lock_together(db: Database):
    rows = db.query(
        "SELECT current_setting('app.current_org_id', true), count(*) FROM pg_locks "
        "WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
        lock_key="some-key",
        tx_settings={"app.current_org_id": "org-2"},
    )
    assert rows == [["org-2", 1]]
    assert db.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()") == [[0]]


def test_a_failed_statement_rolls_back_and_leaves_no_setting(db: Database):
    with pytest.raises(DatabaseError):
        db.query("SELECT 1 / 0", tx_settings={"app.current_org_id": "org-3"})
    assert db.query(SHOW)[0][0] in (None, "")
    assert db.query("SELECT 1") == [[1]]  # the connection is usable: no transaction left open
