"""The exchange's command journal on real files: recovery, waits, damage and snapshots.

Every test writes a real journal in ``tmp_path`` through ``FileExchangeJournal`` and reads
it back the way a restarting matcher does; commands are those of the real matching engine
(``journal_workload.py``). Crash tests with SIGKILL are in ``test_journal_kill.py``.
"""

from __future__ import annotations

import asyncio
import errno
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpgnode.adapters.exchange import MsgpackBatchCodec, journal_directory
from dpgnode.adapters.exchange.segments import (
    FRAME_HEADER,
    SEGMENT_HEADER,
    encode_frame,
    list_segments,
)
from dpgnode.domain.exchange import MatchingEngine
from dpgnode.errors import IntegrityError, UnavailableError, ValidationError
from dpgnode.ports.exchange_journal import ExchangeJournal
from tests.integration.exchange.journal_workload import (
    Command,
    apply,
    command,
    fill,
    open_journal,
    rebuild,
    reference,
)

pytestmark = pytest.mark.integration


# -- recovery and sequence numbers --------------------------------------------------------


@pytest.mark.parametrize("dsync_writes", [True, False], ids=["rwf_dsync", "fdatasync"])
def test_recover_returns_every_command_in_order_when_reopened(
    tmp_path: Path, dsync_writes: bool
) -> None:
    journal: ExchangeJournal[Command, Any] = open_journal(tmp_path, dsync_writes=dsync_writes)
    assert journal.recover().last_seq == 0
    fill(journal, 1, 1, 500)
    journal.wait_durable(500)
    fill(journal, 1, 501, 700)
    journal.close()
    assert journal.durable_seq == 700

    again = open_journal(tmp_path)
    recovered = again.recover()
    assert recovered.snapshot is None
    assert recovered.truncated_bytes == 0
    assert list(recovered.commands) == [command(1, s) for s in range(1, 701)]
    assert again.append(("cancel", 1)) == 701  # numbering continues
    again.close()


def test_waits_and_listener_see_each_group_when_it_is_durable(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    journal.recover()
    seen: list[int] = []
    journal.subscribe(seen.append)
    fill(journal, 2, 1, 300)
    journal.wait_durable(300, timeout=10)

    async def await_one() -> int:
        seq = journal.append(("cancel", 7))
        await asyncio.wait_for(journal.wait_durable_async(seq), 10)
        return seq

    seq = asyncio.run(await_one())
    assert journal.durable_seq >= seq == 301
    journal.close()
    assert seen == sorted(seen)
    assert seen[-1] == 301
    with pytest.raises(ValidationError):
        journal.wait_durable(10_000)


def test_append_is_refused_before_recover_and_after_close(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    with pytest.raises(UnavailableError, match="not recovered"):
        journal.append(("cancel", 1))
    journal.recover()
    journal.close()
    with pytest.raises(UnavailableError, match="closed"):
        journal.append(("cancel", 1))


def test_second_opener_is_refused_while_the_journal_is_in_use(tmp_path: Path) -> None:
    first = open_journal(tmp_path)
    first.recover()
    second = open_journal(tmp_path)
    with pytest.raises(UnavailableError, match="in use"):
        second.recover()
    first.close()
    second.recover()
    second.close()


def test_pair_names_cannot_escape_the_data_directory(tmp_path: Path) -> None:
    assert journal_directory(tmp_path, "BTC-USD") == tmp_path / "exchange" / "BTC-USD"
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(ValidationError):
            journal_directory(tmp_path, bad)


def test_write_failure_fails_the_journal_for_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = open_journal(tmp_path)
    journal.recover()
    fill(journal, 3, 1, 10)
    journal.wait_durable(10)

    def broken(*args: Any) -> int:
        raise OSError(errno.EIO, "injected I/O error")

    monkeypatch.setattr(os, "pwritev", broken)
    monkeypatch.setattr(os, "pwrite", broken)
    seq = journal.append(command(3, 11))
    with pytest.raises(UnavailableError, match="injected"):
        journal.wait_durable(seq, timeout=10)
    with pytest.raises(UnavailableError, match="injected"):
        journal.append(command(3, 12))
    assert journal.durable_seq == 10
    monkeypatch.undo()
    journal.close()
    recovered = open_journal(tmp_path).recover()
    assert recovered.last_seq == 10


def test_waits_time_out_or_fail_while_the_disk_does_not_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = open_journal(tmp_path)
    journal.recover()
    release = threading.Event()
    real_pwritev = os.pwritev

    def stalled(fd: int, buffers: Any, offset: int, flags: int = 0) -> int:
        release.wait(30)
        raise OSError(errno.EIO, "disk gone")

    monkeypatch.setattr(os, "pwritev", stalled)
    seq = journal.append(command(9, 1))

    async def wait_async() -> None:
        await journal.wait_durable_async(seq)

    async def scenario() -> None:
        waiter = asyncio.ensure_future(wait_async())
        await asyncio.sleep(0)
        assert not waiter.done()
        with pytest.raises(UnavailableError, match="not durable within"):
            journal.wait_durable(seq, timeout=0.05)
        release.set()
        with pytest.raises(UnavailableError, match="disk gone"):
            await asyncio.wait_for(waiter, 30)

    asyncio.run(scenario())
    assert journal.durable_seq == 0
    monkeypatch.setattr(os, "pwritev", real_pwritev)
    journal.close()


# -- snapshots and segments -------------------------------------------------------------------


def test_checkpoints_compact_segments_and_recovery_replays_onto_the_snapshot(
    tmp_path: Path,
) -> None:
    journal = open_journal(tmp_path, segment_bytes=4_096)
    journal.recover()
    engine = MatchingEngine()
    for seq in range(1, 6_001):
        cmd = command(4, seq)
        journal.append(cmd)
        apply(engine, cmd)
        if seq % 1_000 == 0:
            journal.wait_durable(seq)  # small groups, so segments rotate often
        if seq in (2_000, 4_000, 5_000):
            journal.checkpoint(seq, engine.snapshot())
    journal.close()
    segments = list_segments(tmp_path)
    assert segments[0][0] <= 4_001  # the oldest kept snapshot (4,000) still has its tail
    assert segments[0][0] > 1  # older segments are gone
    assert sorted(p.name for p in tmp_path.glob("*.snapshot")) == [
        f"{4_000:020d}.snapshot", f"{5_000:020d}.snapshot"
    ]

    recovered = open_journal(tmp_path).recover()
    assert recovered.snapshot_seq == 5_000
    assert list(recovered.commands) == [command(4, s) for s in range(5_001, 6_001)]
    assert rebuild(recovered).snapshot() == engine.snapshot() == reference(4, 6_000).snapshot()


def test_damaged_latest_snapshot_falls_back_to_the_older_one(tmp_path: Path) -> None:
    journal = open_journal(tmp_path, segment_bytes=4_096)
    journal.recover()
    engine = MatchingEngine()
    for seq in range(1, 3_001):
        cmd = command(5, seq)
        journal.append(cmd)
        apply(engine, cmd)
        if seq in (1_000, 2_000):
            journal.checkpoint(seq, engine.snapshot())
    journal.close()
    latest = tmp_path / f"{2_000:020d}.snapshot"
    data = bytearray(latest.read_bytes())
    data[-3] ^= 0xFF
    latest.write_bytes(bytes(data))

    recovered = open_journal(tmp_path).recover()
    assert recovered.snapshot_seq == 1_000
    assert rebuild(recovered).snapshot() == engine.snapshot()


def _journal_with_frames(directory: Path, groups: int) -> list[int]:
    """A one-segment journal of ``groups`` frames of 10 commands; their byte offsets."""
    journal = open_journal(directory)
    journal.recover()
    for group in range(groups):
        fill(journal, 6, group * 10 + 1, group * 10 + 10)
        journal.wait_durable(group * 10 + 10)
    journal.close()
    data = list_segments(directory)[0][1].read_bytes()
    offsets, pos = [], SEGMENT_HEADER.size
    while pos < len(data):
        offsets.append(pos)
        length = FRAME_HEADER.unpack_from(data, pos)[2]
        pos += FRAME_HEADER.size + length
    assert len(offsets) == groups
    return offsets


@pytest.mark.parametrize("tail", ["half_frame", "header_only", "zeros", "bad_crc"])
def test_torn_tail_is_cut_off_when_recovering(tmp_path: Path, tail: str) -> None:
    _journal_with_frames(tmp_path, 3)
    path = list_segments(tmp_path)[0][1]
    size = path.stat().st_size
    frame = encode_frame(31, 5, MsgpackBatchCodec[Command](Command).encode_batch(
        [command(6, s) for s in range(31, 36)]))
    torn = {
        "half_frame": frame[: len(frame) // 2],
        "header_only": frame[: FRAME_HEADER.size - 3],
        "zeros": bytes(700),
        "bad_crc": frame[:-1] + bytes([frame[-1] ^ 1]),
    }[tail]
    with path.open("ab") as handle:
        handle.write(torn)

    journal = open_journal(tmp_path)
    recovered = journal.recover()
    assert recovered.truncated_bytes == len(torn)
    assert path.stat().st_size == size
    assert list(recovered.commands) == [command(6, s) for s in range(1, 31)]
    assert journal.append(("cancel", 1)) == 31
    journal.close()
    assert open_journal(tmp_path).recover().last_seq == 31


def test_corruption_before_acknowledged_frames_is_an_integrity_error(tmp_path: Path) -> None:
    offsets = _journal_with_frames(tmp_path, 4)
    path = list_segments(tmp_path)[0][1]
    data = bytearray(path.read_bytes())
    data[offsets[1] + FRAME_HEADER.size + 2] ^= 0x40  # inside frame 2's payload
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="not a torn tail"):
        open_journal(tmp_path).recover()
    assert path.read_bytes() == bytes(data)  # nothing was cut


def test_corruption_in_an_older_segment_is_an_integrity_error(tmp_path: Path) -> None:
    journal = open_journal(tmp_path, segment_bytes=256)
    journal.recover()
    for group in range(6):
        fill(journal, 7, group * 10 + 1, group * 10 + 10)
        journal.wait_durable(group * 10 + 10)
    journal.close()
    segments = list_segments(tmp_path)
    assert len(segments) >= 3
    first = segments[0][1]
    data = bytearray(first.read_bytes())
    data[-1] ^= 0x01  # the last frame of a segment that is not the last one
    first.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="damaged"):
        open_journal(tmp_path).recover()


def test_missing_segment_is_an_integrity_error(tmp_path: Path) -> None:
    journal = open_journal(tmp_path, segment_bytes=256)
    journal.recover()
    for group in range(6):
        fill(journal, 8, group * 10 + 1, group * 10 + 10)
        journal.wait_durable(group * 10 + 10)
    journal.close()
    segments = list_segments(tmp_path)
    segments[1][1].unlink()
    with pytest.raises(IntegrityError, match="gap"):
        open_journal(tmp_path).recover()


def test_segment_cut_off_while_being_created_is_dropped(tmp_path: Path) -> None:
    _journal_with_frames(tmp_path, 2)
    half_created = tmp_path / f"{21:020d}.journal"
    half_created.write_bytes(b"DPGJ")  # crash between create and the synced header
    journal = open_journal(tmp_path)
    recovered = journal.recover()
    assert recovered.last_seq == 20
    assert recovered.truncated_bytes == 4
    assert not half_created.exists()
    fill(journal, 6, 21, 25)
    journal.close()
    assert [c for c in open_journal(tmp_path).recover().commands][-1] == command(6, 25)


@pytest.fixture(scope="module")
def five_frames(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[int]]:
    """The bytes of a one-segment journal of five 10-command frames, and frame ends."""
    directory = tmp_path_factory.mktemp("five-frames")
    offsets = _journal_with_frames(directory, 5)
    data = list_segments(directory)[0][1].read_bytes()
    return data, [*offsets[1:], len(data)]


def _recover_bytes(data: bytes) -> Any:
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        (directory / f"{1:020d}.journal").write_bytes(data)
        journal = open_journal(directory)
        try:
            return journal.recover()
        finally:
            journal.close()


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=SEGMENT_HEADER.size, max_value=10_000))
def test_any_cut_keeps_exactly_the_whole_frames_before_it(
    five_frames: tuple[bytes, list[int]], cut: int
) -> None:
    data, ends = five_frames
    cut = min(cut, len(data))
    whole = [end for end in ends if end <= cut]
    recovered = _recover_bytes(data[:cut])
    assert list(recovered.commands) == [command(6, s) for s in range(1, len(whole) * 10 + 1)]
    assert recovered.truncated_bytes == cut - (whole[-1] if whole else SEGMENT_HEADER.size)


@settings(max_examples=60, deadline=None)
@given(position=st.integers(min_value=0, max_value=10_000), flip=st.integers(1, 255))
def test_any_damaged_byte_is_cut_only_in_the_last_frame(
    five_frames: tuple[bytes, list[int]], position: int, flip: int
) -> None:
    data, ends = five_frames
    position = min(position, len(data) - 1)
    damaged = bytearray(data)
    damaged[position] ^= flip
    if position >= ends[-2]:  # inside the last frame: a torn tail, never acknowledged
        recovered = _recover_bytes(bytes(damaged))
        assert recovered.last_seq == 40
        assert recovered.truncated_bytes == ends[-1] - ends[-2]
    else:
        with pytest.raises(IntegrityError):
            _recover_bytes(bytes(damaged))
