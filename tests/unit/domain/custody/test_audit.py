"""The audit log's hash chain: any edited, deleted or reordered record is named."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpgnode.domain.custody.audit import (
    GENESIS_HASH,
    AuditAction,
    AuditEvent,
    AuditRecord,
    AuditResult,
    canonical_json,
    parse_anchor,
    recompute_hash,
    seal,
    verify_chain,
)
from dpgnode.errors import ValidationError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def chain(n: int) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    prev = GENESIS_HASH
    for i in range(1, n + 1):
        event = AuditEvent(
            f"op_{i % 3}", AuditAction.PAYOUT_APPROVED, f"po_{i}", AuditResult.OK,
            details={"units": str(i * 100)},
        )
        record = seal(event, seq=i, record_id=f"aud_{i}", at=T0 + timedelta(seconds=i),
                      prev_hash=prev)
        records.append(record)
        prev = record.hash
    return records


def head(records: list[AuditRecord]) -> tuple[int, str]:
    return (records[-1].seq, records[-1].hash) if records else (0, GENESIS_HASH)


def test_chain_verifies_when_untouched() -> None:
    records = chain(5)
    result = verify_chain(records, head(records))
    assert (result.ok, result.checked) == (True, 5)


def test_empty_log_verifies_when_head_is_genesis() -> None:
    assert verify_chain([], (0, GENESIS_HASH)).ok


def test_edited_record_is_named_when_its_content_changes() -> None:
    records = chain(5)
    records[2] = replace(records[2], details={"units": "999999"})
    result = verify_chain(records, head(chain(5)))
    assert (result.ok, result.first_bad_seq, result.first_bad_id) == (False, 3, "aud_3")


def test_edited_record_is_named_when_its_hash_is_recomputed_too() -> None:
    records = chain(5)
    forged = replace(records[1], actor="op_evil")
    records[1] = replace(forged, hash=recompute_hash(forged))
    result = verify_chain(records, head(chain(5)))
    assert result.first_bad_seq == 3  # the next record's link no longer matches


def test_deleted_record_is_named_when_one_in_the_middle_is_gone() -> None:
    records = chain(5)
    del records[1]
    result = verify_chain(records, head(chain(5)))
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "record 2 is missing" in result.reason


def test_deleted_record_is_named_when_the_last_is_gone() -> None:
    records = chain(5)
    result = verify_chain(records[:-1], head(records))
    assert (result.ok, result.first_bad_seq) == (False, 5)


def test_reordered_records_are_named_when_two_swap_places() -> None:
    records = chain(5)
    swapped = [*records[:1], replace(records[2], seq=2), replace(records[1], seq=3),
               *records[3:]]
    result = verify_chain(swapped, head(records))
    assert (result.ok, result.first_bad_seq) == (False, 2)


def test_record_forged_past_the_head_is_reported_when_appended() -> None:
    records = chain(3)
    extra = seal(AuditEvent("op_x", AuditAction.SIGNING_SUCCEEDED, "po_x", AuditResult.OK),
                 seq=4, record_id="aud_4", at=T0, prev_hash=records[-1].hash)
    result = verify_chain([*records, extra], head(records))
    assert (result.ok, result.first_bad_seq) == (False, 4)


def test_canonical_json_is_independent_of_the_time_zone_when_instants_are_equal() -> None:
    other_zone = T0.astimezone(timezone(timedelta(hours=5)))
    args = ("op", "payout.approved", "po_1", "ok", "", {"b": "2", "a": "1"})
    assert canonical_json(1, "aud_1", T0, *args) == canonical_json(1, "aud_1", other_zone, *args)
    assert '"details":{"a":"1","b":"2"}' in canonical_json(1, "aud_1", T0, *args)


@given(st.integers(1, 30), st.data())
def test_any_single_edit_is_detected_when_drawn_at_random(n: int, data: st.DataObject) -> None:
    records = chain(n)
    index = data.draw(st.integers(0, n - 1))
    field = data.draw(st.sampled_from(["actor", "subject", "result", "rule", "action"]))
    value = data.draw(st.text(min_size=1, max_size=10))
    tampered = replace(records[index], **{field: getattr(records[index], field) + value})
    records[index] = tampered
    result = verify_chain(records, head(chain(n)))
    assert not result.ok
    assert result.first_bad_seq == index + 1


def test_missing_head_fails_verification_when_its_row_is_gone() -> None:
    result = verify_chain(chain(3), None)
    assert (result.ok, result.head) == (False, None)
    assert "head row is missing" in result.reason


def test_success_reports_the_head_to_anchor_when_intact() -> None:
    records = chain(4)
    assert verify_chain(records, head(records)).head == (4, records[-1].hash)


def test_log_cut_short_with_head_rewound_is_caught_only_by_the_anchor() -> None:
    records = chain(5)
    anchor = head(records)
    cut = records[:3]
    assert verify_chain(cut, head(cut)).ok  # the chain alone sees a shorter, intact log
    result = verify_chain(cut, head(cut), anchor)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "before the anchored record 5" in result.reason


def test_rewritten_chain_is_named_at_the_anchor_when_rehashed_from_the_start() -> None:
    records = chain(5)
    anchor = (3, records[2].hash)
    forged: list[AuditRecord] = []
    prev = GENESIS_HASH
    for record in records:  # an intruder re-hashes everything after editing record 2
        edited = replace(record, actor="op_evil" if record.seq == 2 else record.actor,
                         prev_hash=prev)
        edited = replace(edited, hash=recompute_hash(edited))
        forged.append(edited)
        prev = edited.hash
    assert verify_chain(forged, head(forged)).ok
    result = verify_chain(forged, head(forged), anchor)
    assert (result.ok, result.first_bad_seq, result.first_bad_id) == (False, 3, "aud_3")


def test_anchor_inside_an_intact_chain_verifies_when_unchanged() -> None:
    records = chain(5)
    assert verify_chain(records, head(records), (2, records[1].hash)).ok


def test_anchor_text_is_parsed_when_printed_by_verify() -> None:
    assert parse_anchor(f" 12:{'ab' * 32} ") == (12, "ab" * 32)


@pytest.mark.parametrize(
    "text", ["", "12", f"0:{'a' * 64}", f"-1:{'a' * 64}", f"1:{'a' * 63}", f"1:{'A' * 64}",
             f"x:{'a' * 64}", f"1:{'g' * 64}"],
)
def test_malformed_anchor_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_anchor(text)
    assert info.value.details["field"] == "anchor"
