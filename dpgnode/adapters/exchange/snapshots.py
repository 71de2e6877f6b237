"""Engine snapshots on disk: written atomically, checked on load, the newest few kept.

File ``<seq>.snapshot`` (20 digits) = header ``magic "DPGSNAP1" | seq u64 | length u64 |
crc32 u32`` + the codec's bytes. A snapshot is written to a temporary name, ``fsync``'d,
renamed into place and the directory ``fsync``'d, so after a crash a snapshot file is
either complete or absent; leftover temporary files are removed on load. A complete file
that fails its CRC is skipped (with a warning) in favour of the next older one, which is
why more than one is kept: the journal is only compacted up to the oldest kept snapshot.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from dpgnode.adapters.exchange.segments import fsync_directory
from dpgnode.errors import IntegrityError

SNAPSHOT_SUFFIX = ".snapshot"
TEMP_SUFFIX = ".tmp"
SNAPSHOT_MAGIC = b"DPGSNAP1"
SNAPSHOT_HEADER = struct.Struct("<8sQQI")

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SnapshotFile:
    """A snapshot that passed its checks: the sequence number it covers and its bytes."""

    seq: int
    data: bytes


def snapshot_name(seq: int) -> str:
    """The file name of the snapshot covering commands up to ``seq``."""
    return f"{seq:020d}{SNAPSHOT_SUFFIX}"


class SnapshotFiles:
    """The snapshots of one journal directory (bytes in, bytes out; codecs live elsewhere)."""

    def __init__(self, directory: Path, *, keep: int = 2) -> None:
        if keep < 1:
            raise ValueError("keep at least one snapshot")
        self._dir = directory
        self._keep = keep

    def sequence_numbers(self) -> list[int]:
        """The sequence numbers of the snapshot files present, oldest first."""
        seqs = []
        for path in self._dir.glob(f"*{SNAPSHOT_SUFFIX}"):
            stem = path.name[: -len(SNAPSHOT_SUFFIX)]
            if len(stem) == 20 and stem.isdigit():
                seqs.append(int(stem))
        return sorted(seqs)

    def save(self, seq: int, data: bytes) -> None:
        """Write the snapshot for ``seq`` atomically and durably, then prune old ones."""
        final = self._dir / snapshot_name(seq)
        temp = final.with_name(final.name + TEMP_SUFFIX)
        header = SNAPSHOT_HEADER.pack(SNAPSHOT_MAGIC, seq, len(data), zlib.crc32(data))
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(header + data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, final)
        fsync_directory(self._dir)
        self.prune()

    def prune(self) -> None:
        """Delete all but the newest ``keep`` snapshots."""
        seqs = self.sequence_numbers()
        for seq in seqs[: -self._keep]:
            (self._dir / snapshot_name(seq)).unlink(missing_ok=True)
        if len(seqs) > self._keep:
            fsync_directory(self._dir)

    def oldest_kept(self) -> int | None:
        """The sequence number of the oldest snapshot kept (the journal must reach it)."""
        seqs = self.sequence_numbers()
        return seqs[0] if seqs else None

    def newest_first(self) -> Iterator[SnapshotFile]:
        """The snapshots that pass their checks, newest first (damaged ones are logged)."""
        for temp in self._dir.glob(f"*{SNAPSHOT_SUFFIX}{TEMP_SUFFIX}"):
            temp.unlink()  # a save that never reached its rename
        for seq in reversed(self.sequence_numbers()):
            path = self._dir / snapshot_name(seq)
            try:
                yield self._read(path, seq)
            except IntegrityError as exc:
                log.warning("exchange.snapshot_damaged", path=str(path), error=str(exc))

    @staticmethod
    def _read(path: Path, seq: int) -> SnapshotFile:
        raw = path.read_bytes()
        if len(raw) < SNAPSHOT_HEADER.size:
            raise IntegrityError(f"snapshot {path.name} is too short")
        magic, stored_seq, length, crc = SNAPSHOT_HEADER.unpack_from(raw, 0)
        data = raw[SNAPSHOT_HEADER.size:]
        if magic != SNAPSHOT_MAGIC or stored_seq != seq or length != len(data):
            raise IntegrityError(f"snapshot {path.name} has a damaged header")
        if zlib.crc32(data) != crc:
            raise IntegrityError(f"snapshot {path.name} fails its CRC")
        return SnapshotFile(seq, data)
