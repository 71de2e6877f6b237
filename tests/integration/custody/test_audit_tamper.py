"""R23: ``dpg audit verify`` detects any edited, deleted or reordered audit record.

A data directory gets a few audit records through the CLI, then the SQLite file is changed
behind the node's back with the ``sqlite3`` module, as an intruder with file access would:
first dropping the triggers that keep the log append-only (they refuse every such change,
see ``test_audit_guards.py``). Verification must fail (exit 1) and name the first bad record.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from dpgnode.cli.main import app
from dpgnode.domain.custody.audit import AuditRecord, recompute_hash

pytestmark = pytest.mark.integration

ZPUB = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDK"
    "f31mGDtKsAYz2oz2AGutZYs"
)
Dpg = Callable[..., Result]


@pytest.fixture
def dpg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Dpg:
    for name in list(os.environ):
        if name.startswith("DPG_"):
            monkeypatch.delenv(name)
    runner = CliRunner()
    data_dir = tmp_path / "data"

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env={"DPG_DATA_DIR": str(data_dir)})

    assert invoke("init").exit_code == 0
    for name in ("alice", "bob", "carol", "dave"):
        assert invoke("operator", "add", name).exit_code == 0
    result = invoke("wallet", "add-xpub", ZPUB, "--network", "mainnet")
    assert result.exit_code == 0, result.output
    return invoke


def database(tmp_path: Path) -> sqlite3.Connection:
    """The node's database with the audit log's guard triggers dropped, as an intruder can."""
    db = sqlite3.connect(tmp_path / "data" / "dpg.sqlite3", isolation_level=None)
    triggers = db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'custody_audit%'"
    ).fetchall()
    assert len(triggers) == 6
    for (name,) in triggers:
        db.execute(f"DROP TRIGGER {name}")
    return db


def head_of(result: Result) -> str:
    head: str = json.loads(result.stdout)["head"]
    return head


def verify(dpg: Dpg) -> tuple[int, dict[str, object]]:
    result = dpg("audit", "verify", "--json")
    return result.exit_code, json.loads(result.stdout)


def test_untouched_log_verifies_when_checked(dpg: Dpg) -> None:
    code, report = verify(dpg)
    assert (code, report["ok"], report["checked"]) == (0, True, 5)
    assert str(report["head"]).startswith("5:")
    assert dpg("audit", "verify", "--anchor", str(report["head"])).exit_code == 0
    listed = json.loads(dpg("audit", "list", "--json").stdout)
    assert [r["action"] for r in listed] == ["operator.added"] * 4 + ["wallet.watch_only_added"]


def test_edited_record_is_named_when_a_field_changes(dpg: Dpg, tmp_path: Path) -> None:
    with database(tmp_path) as db:
        db.execute("UPDATE custody_audit SET actor = 'op_evil' WHERE seq = 3")
    code, report = verify(dpg)
    assert (code, report["ok"], report["firstBadSeq"]) == (1, False, 3)
    assert "edited" in str(report["reason"])


def test_edited_details_are_named_when_json_changes(dpg: Dpg, tmp_path: Path) -> None:
    with database(tmp_path) as db:
        db.execute("UPDATE custody_audit SET details = '{\"name\": \"mallory\"}' WHERE seq = 2")
    code, report = verify(dpg)
    assert (code, report["firstBadSeq"]) == (1, 2)


def test_rehashed_edit_is_named_at_the_next_record(dpg: Dpg, tmp_path: Path) -> None:
    # An intruder who recomputes the edited record's own hash still breaks the next link.
    with database(tmp_path) as db:
        row = db.execute("SELECT * FROM custody_audit WHERE seq = 2").fetchone()
        names = [d[0] for d in db.execute("SELECT * FROM custody_audit").description]
        data = dict(zip(names, row, strict=True))
        forged = AuditRecord(
            seq=2, id=data["id"], at=datetime.fromisoformat(data["at"]).replace(tzinfo=UTC),
            actor="op_evil", action=data["action"], subject=data["subject"],
            result=data["result"], rule=data["rule"], details=json.loads(data["details"]),
            prev_hash=data["prev_hash"], hash="",
        )
        db.execute("UPDATE custody_audit SET actor = 'op_evil', hash = ? WHERE seq = 2",
                   (recompute_hash(forged),))
    code, report = verify(dpg)
    assert (code, report["firstBadSeq"]) == (1, 3)


def test_deleted_record_is_named_when_one_in_the_middle_is_gone(
    dpg: Dpg, tmp_path: Path
) -> None:
    with database(tmp_path) as db:
        db.execute("DELETE FROM custody_audit WHERE seq = 2")
    code, report = verify(dpg)
    assert (code, report["firstBadSeq"]) == (1, 3)
    assert "record 2 is missing" in str(report["reason"])


def test_deleted_record_is_named_when_the_last_is_gone(dpg: Dpg, tmp_path: Path) -> None:
    with database(tmp_path) as db:
        db.execute("DELETE FROM custody_audit WHERE seq = 5")
    code, report = verify(dpg)
    assert (code, report["firstBadSeq"]) == (1, 5)


def test_log_cut_short_with_its_head_rewound_is_named_when_anchored(
    dpg: Dpg, tmp_path: Path
) -> None:
    anchor = head_of(dpg("audit", "verify", "--json"))
    with database(tmp_path) as db:
        prev_hash = db.execute("SELECT prev_hash FROM custody_audit WHERE seq = 5").fetchone()
        db.execute("DELETE FROM custody_audit WHERE seq = 5")
        db.execute("UPDATE custody_audit_head SET seq = 4, hash = ? WHERE id = 1", prev_hash)
    # The chain alone cannot tell this from a log of four records ...
    assert verify(dpg)[1]["ok"] is True
    # ... but the anchor kept from the earlier verification can.
    result = dpg("audit", "verify", "--anchor", anchor, "--json")
    report = json.loads(result.stdout)
    assert (result.exit_code, report["ok"], report["firstBadSeq"]) == (1, False, 5)
    assert "before the anchored record 5" in report["reason"]


def test_rewritten_chain_is_named_when_anchored(dpg: Dpg, tmp_path: Path) -> None:
    anchor = head_of(dpg("audit", "verify", "--json"))
    with database(tmp_path) as db:  # a fully re-hashed chain with record 2 altered
        names = [d[0] for d in db.execute("SELECT * FROM custody_audit").description]
        prev = "0" * 64
        for row in db.execute("SELECT * FROM custody_audit ORDER BY seq").fetchall():
            data = dict(zip(names, row, strict=True))
            forged = AuditRecord(
                seq=data["seq"], id=data["id"],
                at=datetime.fromisoformat(data["at"]).replace(tzinfo=UTC),
                actor="op_evil" if data["seq"] == 2 else data["actor"], action=data["action"],
                subject=data["subject"], result=data["result"], rule=data["rule"],
                details=json.loads(data["details"]), prev_hash=prev, hash="",
            )
            prev = recompute_hash(forged)
            db.execute(
                "UPDATE custody_audit SET actor = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (forged.actor, forged.prev_hash, prev, forged.seq),
            )
        db.execute("UPDATE custody_audit_head SET hash = ? WHERE id = 1", (prev,))
    assert verify(dpg)[1]["ok"] is True
    result = dpg("audit", "verify", "--anchor", anchor, "--json")
    assert (result.exit_code, json.loads(result.stdout)["firstBadSeq"]) == (1, 5)


def test_missing_head_row_is_reported_when_verified(dpg: Dpg, tmp_path: Path) -> None:
    with database(tmp_path) as db:
        db.execute("DELETE FROM custody_audit_head")
    code, report = verify(dpg)
    assert (code, report["ok"], report["head"]) == (1, False, None)
    assert "head row is missing" in str(report["reason"])
    # Nothing more is appended to a log without its head (and nothing else is written).
    result = dpg("operator", "add", "erin")
    assert result.exit_code != 0
    assert "head row is missing" in result.output


@pytest.mark.parametrize("anchor", ["5", "x:" + "0" * 64, "5:" + "G" * 64, "0:" + "0" * 64])
def test_malformed_anchor_is_a_usage_error_when_given(dpg: Dpg, anchor: str) -> None:
    result = dpg("audit", "verify", "--anchor", anchor)
    assert result.exit_code == 2
    assert "--anchor" in result.output


def test_reordered_records_are_named_when_two_swap_places(dpg: Dpg, tmp_path: Path) -> None:
    with database(tmp_path) as db:
        db.execute("UPDATE custody_audit SET seq = -1 WHERE seq = 2")
        db.execute("UPDATE custody_audit SET seq = 2 WHERE seq = 3")
        db.execute("UPDATE custody_audit SET seq = 3 WHERE seq = -1")
    code, report = verify(dpg)
    assert (code, report["firstBadSeq"]) == (1, 2)


def test_human_output_names_the_first_bad_record_when_broken(
    dpg: Dpg, tmp_path: Path
) -> None:
    with database(tmp_path) as db:
        db.execute("UPDATE custody_audit SET result = 'denied' WHERE seq = 4")
    result = dpg("audit", "verify")
    assert result.exit_code == 1
    assert "audit log broken at record 4" in result.output


def test_appending_after_verification_keeps_the_chain_when_new_records_arrive(
    dpg: Dpg,
) -> None:
    assert dpg("operator", "add", "erin").exit_code == 0
    code, report = verify(dpg)
    assert (code, report["checked"]) == (0, 6)
