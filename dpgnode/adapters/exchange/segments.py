"""The journal's on-disk format, and reading it back after a crash.

A journal is a directory of *segments* named by the sequence number of their first command
(``00000000000000000001.journal``). A segment starts with a 20-byte header and holds
*frames*, one per group the flusher wrote; frames are only ever appended::

    segment header   magic "DPGJSEG1" | first_seq u64 | crc32 of the previous 16 bytes
    frame header     magic "DPGF" | crc32 u32 | payload_len u32 | first_seq u64 | count u32
    frame payload    the group's commands (codec.BatchCodec), sequence numbers
                     first_seq .. first_seq + count - 1 by position

The frame CRC covers ``payload_len``, ``first_seq``, ``count`` and the payload. One CRC per
group rather than per command keeps the flusher cheap, and loses nothing: a group becomes
durable (and acknowledged) as a whole, after its ``fdatasync``.

Why a damaged frame is either a torn tail or corruption: the flusher writes a frame only
after the previous one was ``fdatasync``'d, so only the last frame of the last segment can
be incomplete after a crash (cut by SIGKILL in the middle of ``write``, or partly on disk
after a power loss). Such a frame was never acknowledged, so recovery cuts it off. A damaged
frame anywhere else -- in an older segment, or followed by any frame that still passes its
CRC -- means acknowledged data was damaged: :class:`~dpgnode.errors.IntegrityError`, never
a silent truncation.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dpgnode.errors import IntegrityError

SEGMENT_SUFFIX = ".journal"
SEGMENT_MAGIC = b"DPGJSEG1"
FRAME_MAGIC = b"DPGF"
SEGMENT_HEADER = struct.Struct("<8sQI")
FRAME_HEADER = struct.Struct("<4sIIQI")
_CRC_COVERED = struct.Struct("<IQI")  # payload_len, first_seq, count
MAX_PAYLOAD = 1 << 31


def segment_name(first_seq: int) -> str:
    """The file name of the segment whose first command is ``first_seq``."""
    return f"{first_seq:020d}{SEGMENT_SUFFIX}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """``(first_seq, path)`` of every segment in ``directory``, oldest first."""
    found = []
    for path in directory.glob(f"*{SEGMENT_SUFFIX}"):
        stem = path.name[: -len(SEGMENT_SUFFIX)]
        if len(stem) == 20 and stem.isdigit():
            found.append((int(stem), path))
    return sorted(found)


def encode_segment_header(first_seq: int) -> bytes:
    """The header a new segment starts with."""
    head = SEGMENT_MAGIC + first_seq.to_bytes(8, "little")
    return head + zlib.crc32(head).to_bytes(4, "little")


def encode_frame(first_seq: int, count: int, payload: bytes) -> bytes:
    """One frame: header and payload, ready for a single ``write``."""
    covered = _CRC_COVERED.pack(len(payload), first_seq, count)
    crc = zlib.crc32(payload, zlib.crc32(covered))
    return FRAME_HEADER.pack(FRAME_MAGIC, crc, len(payload), first_seq, count) + payload


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame that passed its CRC."""

    offset: int
    end: int
    first_seq: int
    count: int
    payload: bytes


def parse_frame(data: bytes, offset: int) -> Frame | None:
    """The intact frame at ``offset``, or ``None`` if there is none (short, torn, bad CRC)."""
    end_header = offset + FRAME_HEADER.size
    if end_header > len(data):
        return None
    magic, crc, length, first_seq, count = FRAME_HEADER.unpack_from(data, offset)
    end = end_header + length
    if magic != FRAME_MAGIC or length > MAX_PAYLOAD or count == 0 or end > len(data):
        return None
    payload = data[end_header:end]
    if zlib.crc32(payload, zlib.crc32(_CRC_COVERED.pack(length, first_seq, count))) != crc:
        return None
    return Frame(offset, end, first_seq, count, payload)


def parse_segment_header(data: bytes) -> int | None:
    """The first sequence number a segment header declares, or ``None`` if it is damaged."""
    if len(data) < SEGMENT_HEADER.size:
        return None
    magic, first_seq, crc = SEGMENT_HEADER.unpack_from(data, 0)
    if magic != SEGMENT_MAGIC or zlib.crc32(data[:16]) != crc:
        return None
    return int(first_seq)


def _intact_frames_after(data: bytes, offset: int) -> Iterator[Frame]:
    """Every intact frame starting after ``offset`` (found by its magic)."""
    pos = data.find(FRAME_MAGIC, offset + 1)
    while pos != -1:
        frame = parse_frame(data, pos)
        if frame is not None:
            yield frame
        pos = data.find(FRAME_MAGIC, pos + 1)


@dataclass
class JournalScan:
    """The intact frames of a journal, in order, and what recovery must cut off."""

    frames: list[Frame] = field(default_factory=list)
    first_seq: int | None = None
    next_seq: int | None = None
    tail_path: Path | None = None
    tail_end: int = 0
    torn_bytes: int = 0
    drop_tail_segment: bool = False


def scan_journal(directory: Path) -> JournalScan:
    """Read every segment and check the sequence numbers run on without a gap.

    Does not modify anything: :func:`repair_tail` applies the cut this scan decided.

    Raises:
        IntegrityError: a damaged header or frame other than the torn tail, or a gap.
    """
    scan = JournalScan()
    segments = list_segments(directory)
    for index, (named_seq, path) in enumerate(segments):
        last = index == len(segments) - 1
        data = path.read_bytes()
        first_seq = parse_segment_header(data)
        if first_seq is None:
            _damaged_header(scan, path, data, last)
            continue
        if first_seq != named_seq:
            raise IntegrityError(f"journal segment {path.name} declares first seq {first_seq}")
        if scan.next_seq is None:
            scan.first_seq = first_seq
        elif first_seq != scan.next_seq:
            raise IntegrityError(
                f"journal gap: {path.name} starts at {first_seq}, expected {scan.next_seq}"
            )
        scan.next_seq = first_seq
        _scan_frames(scan, path, data, last)
    return scan


def _damaged_header(scan: JournalScan, path: Path, data: bytes, last: bool) -> None:
    # A crash while a new segment was being created leaves a short header and no frame.
    if not last or next(_intact_frames_after(data, -1), None) is not None:
        raise IntegrityError(f"journal segment {path.name} has a damaged header")
    scan.tail_path = path
    scan.torn_bytes = len(data)
    scan.drop_tail_segment = True


def _scan_frames(scan: JournalScan, path: Path, data: bytes, last: bool) -> None:
    offset = SEGMENT_HEADER.size
    while offset < len(data):
        frame = parse_frame(data, offset)
        if frame is None:
            later = next(_intact_frames_after(data, offset), None)
            if not last or later is not None:
                raise IntegrityError(
                    f"journal segment {path.name} is damaged at byte {offset} "
                    "(not a torn tail: acknowledged records follow it or it is not the last)"
                )
            break
        if frame.first_seq != scan.next_seq:
            raise IntegrityError(
                f"journal segment {path.name}: frame at byte {offset} starts at seq "
                f"{frame.first_seq}, expected {scan.next_seq}"
            )
        scan.frames.append(frame)
        scan.next_seq = frame.first_seq + frame.count
        offset = frame.end
    if last:
        scan.tail_path = path
        scan.tail_end = offset
        scan.torn_bytes = len(data) - offset


def repair_tail(scan: JournalScan) -> None:
    """Cut the torn tail :func:`scan_journal` found, durably (file and directory synced)."""
    if scan.tail_path is None or scan.torn_bytes == 0:
        return
    if scan.drop_tail_segment:
        scan.tail_path.unlink()
    else:
        with scan.tail_path.open("r+b") as handle:
            handle.truncate(scan.tail_end)
            handle.flush()
            os.fsync(handle.fileno())
    fsync_directory(scan.tail_path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a create, rename, truncate or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
