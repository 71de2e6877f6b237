"""The database itself keeps the custody audit log append-only (SQLite and PostgreSQL).

Triggers from migration 0003 refuse to change or delete a record, to insert one that does
not continue the head, and to move the head anywhere but one record forward to a record
that exists. So the attack the hash chain alone cannot see (cut the last records, rewind
the head) needs the triggers dropped first; ``test_audit_tamper.py`` covers that case.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.node import Node
from tests.support.custody import custody_node

pytestmark = pytest.mark.integration

REFUSED = [
    "UPDATE custody_audit SET actor = 'op_evil' WHERE seq = 2",
    "UPDATE custody_audit SET seq = 9 WHERE seq = 3",
    "DELETE FROM custody_audit WHERE seq = 3",
    "DELETE FROM custody_audit",
    "DELETE FROM custody_audit_head",
    "UPDATE custody_audit_head SET seq = 2, hash = (SELECT hash FROM custody_audit WHERE seq = 2)",
    "UPDATE custody_audit_head SET hash = (SELECT hash FROM custody_audit WHERE seq = 2)",
    "UPDATE custody_audit_head SET seq = seq + 1",
    "INSERT INTO custody_audit_head (id, seq, hash) VALUES (2, 0, 'x')",
    # A forged record must still continue the head: a wrong seq or a wrong link is refused.
    "INSERT INTO custody_audit SELECT seq + 5, 'aud_forged', at, actor, action, subject, "
    "result, rule, details, hash, hash FROM custody_audit WHERE seq = 3",
    "INSERT INTO custody_audit SELECT seq + 1, 'aud_forged', at, actor, action, subject, "
    "result, rule, details, prev_hash, hash FROM custody_audit WHERE seq = 3",
]


@pytest.fixture
def guarded(database_url: str, tmp_path: Path, clock: FixedClock) -> Iterator[Node]:
    node = custody_node(tmp_path, clock, url=database_url)
    for name in ("alice", "bob", "carol"):
        node.custody.operators.add(name)
    yield node
    node.close()


@pytest.mark.parametrize("statement", REFUSED)
def test_change_is_refused_and_the_log_stays_intact_when_tried_in_sql(
    guarded: Node, statement: str
) -> None:
    with pytest.raises(DBAPIError, match="append-only"), guarded.engine.begin() as conn:
        conn.execute(text(statement))
    result = guarded.custody.audit.verify()
    assert (result.ok, result.checked) == (True, 3)
    assert result.head is not None
    assert result.head[0] == 3


def test_truncate_is_refused_when_tried_on_postgresql(guarded: Node) -> None:
    if guarded.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE (its DELETE is covered above)")
    for table in ("custody_audit", "custody_audit_head"):
        with pytest.raises(DBAPIError, match="append-only"), guarded.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {table} CASCADE"))
    assert guarded.custody.audit.verify().checked == 3


def test_node_keeps_appending_when_the_guards_are_in_place(guarded: Node) -> None:
    guarded.custody.operators.disable("alice")
    guarded.custody.operators.add("dave")
    result = guarded.custody.audit.verify()
    assert (result.ok, result.checked) == (True, 5)
    actions = [r.action for r in guarded.custody.audit.records()]
    assert actions == ["operator.added"] * 3 + ["operator.disabled", "operator.added"]
