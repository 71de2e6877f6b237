"""The ``ExchangeJournal`` port on local files: group-committed off the matching path.

The matching thread calls :meth:`FileExchangeJournal.append`, which puts the command on a
deque and returns its sequence number: no lock, no syscall, no encoding (a few hundred
nanoseconds). One flusher thread takes everything queued, encodes it as one frame
(``segments.py``), writes it, ``fdatasync``s it and only then advances ``durable_seq`` and
wakes the waiters (``watermark.py``). On Linux the write and the sync are one call,
``pwritev(..., RWF_DSYNC)`` (a per-write ``O_DSYNC``: it returns once data and size are on
disk, exactly what ``write`` + ``fdatasync`` give), so the flusher releases and re-takes
the GIL once per group instead of twice; elsewhere, or with ``dsync_writes=False``, it
calls both. While it syncs, the next group queues up by itself (natural batching, as in
the ledger's ``SqlWriter``), so the disk's ~4k syncs/s carry hundreds of thousands of
commands per second.

GIL note: after each sync the flusher must get the GIL back from the busy matching thread,
which gives it up only after ``sys.getswitchinterval()`` (5 ms by default), so a group
takes one sync plus up to one switch interval, and a command waits up to two groups. A
process that runs a matcher and promises acknowledgements within a few milliseconds should
lower the interval, e.g. ``sys.setswitchinterval(0.0002)``: the interval only matters when
another thread asks for the GIL, here once per group, so a short one costs the matcher
little (bench/orderbook.py, ``--switch-interval``).

Files (one directory per pair, ``<data_dir>/exchange/<pair>/``): journal segments
(``segments.py``), snapshots (``snapshots.py``) and a ``LOCK`` file held with ``flock`` so
two processes never append to one journal.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import os
import re
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

import structlog

from dpgnode.adapters.exchange.codec import BatchCodec, StateCodec
from dpgnode.adapters.exchange.segments import (
    SEGMENT_HEADER,
    encode_frame,
    encode_segment_header,
    fsync_directory,
    list_segments,
    repair_tail,
    scan_journal,
    segment_name,
)
from dpgnode.adapters.exchange.snapshots import SnapshotFiles
from dpgnode.adapters.exchange.watermark import Watermark
from dpgnode.errors import IntegrityError, UnavailableError, ValidationError
from dpgnode.ports.exchange_journal import Recovered

C = TypeVar("C")
S = TypeVar("S")
log = structlog.get_logger(__name__)

_PAIR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def journal_directory(data_dir: Path, pair: str) -> Path:
    """Where the journal of ``pair`` lives under the node's data directory."""
    if not _PAIR.fullmatch(pair):
        raise ValidationError(f"not a usable pair name: {pair!r}", field="pair")
    return data_dir / "exchange" / pair


class FileExchangeJournal(Generic[C, S]):
    """One pair's journal and snapshots in ``directory`` (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        commands: BatchCodec[C],
        states: StateCodec[S],
        *,
        segment_bytes: int = 64 << 20,
        max_group: int = 65_536,
        max_pending: int = 262_144,
        keep_snapshots: int = 2,
        dsync_writes: bool = True,
    ) -> None:
        self._dir = directory
        self._commands = commands
        self._states = states
        self._segment_bytes = segment_bytes
        self._max_group = max_group
        self._max_pending = max_pending
        self._snapshots = SnapshotFiles(directory, keep=keep_snapshots)
        self._dsync_writes = dsync_writes and hasattr(os, "RWF_DSYNC")
        self._pending: deque[C] = deque()
        self._last_seq = 0
        self._written_seq = 0
        self._durable = Watermark()
        self._accepting = False  # False before recover(), after close() and after a failure
        self._closing = False
        self._idle = False
        self._wake = threading.Event()
        self._segments_lock = threading.Lock()
        self._fd: int | None = None
        self._segment_size = 0
        self._lock_fd: int | None = None
        self._thread: threading.Thread | None = None
        self.groups = 0

    # -- port: state ------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def durable_seq(self) -> int:
        return self._durable.value

    @property
    def directory(self) -> Path:
        return self._dir

    # -- port: recovery -----------------------------------------------------------------------

    def recover(self) -> Recovered[C, S]:
        if self._thread is not None or self._lock_fd is not None:
            raise IntegrityError("recover() runs once, before the journal is used")
        self._create_directory()
        self._take_lock()
        try:
            recovered = self._load()
        except BaseException:
            self._release_lock()
            raise
        self._last_seq = self._written_seq = self._durable.value = recovered.last_seq
        self._open_tail()
        self._accepting = True
        self._thread = threading.Thread(
            target=self._flush_loop, name=f"dpg-journal-{self._dir.name}", daemon=True
        )
        self._thread.start()
        if recovered.truncated_bytes:
            log.warning("exchange.journal_torn_tail", directory=str(self._dir),
                        bytes=recovered.truncated_bytes, last_seq=recovered.last_seq)
        return recovered

    def _load(self) -> Recovered[C, S]:
        scan = scan_journal(self._dir)
        state: S | None = None
        snapshot_seq = 0
        for snapshot in self._snapshots.newest_first():
            try:
                state = self._states.decode(snapshot.data)
            except IntegrityError as exc:
                log.warning("exchange.snapshot_undecodable", seq=snapshot.seq, error=str(exc))
                continue
            snapshot_seq = snapshot.seq
            break
        last = (scan.next_seq - 1) if scan.next_seq is not None else None
        if scan.first_seq is not None and scan.first_seq > snapshot_seq + 1:
            raise IntegrityError(
                f"journal starts at seq {scan.first_seq} but the snapshot covers only "
                f"{snapshot_seq}: commands in between are lost"
            )
        if snapshot_seq and (last is None or last < snapshot_seq):
            raise IntegrityError(
                f"journal ends at seq {last} before the snapshot's seq {snapshot_seq}"
            )
        repair_tail(scan)
        commands: list[C] = []
        for frame in scan.frames:
            if frame.first_seq + frame.count - 1 <= snapshot_seq:
                continue
            batch = self._commands.decode_batch(frame.payload)
            if len(batch) != frame.count:
                raise IntegrityError(
                    f"journal frame at seq {frame.first_seq} holds {len(batch)} commands, "
                    f"its header says {frame.count}"
                )
            commands.extend(batch[max(0, snapshot_seq + 1 - frame.first_seq):])
        return Recovered(state, snapshot_seq, commands, scan.torn_bytes)

    def _create_directory(self) -> None:
        missing = [p for p in (self._dir, *self._dir.parents) if not p.exists()]
        self._dir.mkdir(parents=True, exist_ok=True)
        for created in reversed(missing):
            fsync_directory(created.parent)

    def _take_lock(self) -> None:
        fd = os.open(self._dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UnavailableError(
                f"exchange journal {self._dir} is in use by another process"
            ) from None
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def _open_tail(self) -> None:
        segments = list_segments(self._dir)
        if segments:
            path = segments[-1][1]
            self._fd = os.open(path, os.O_WRONLY)
            self._segment_size = os.fstat(self._fd).st_size

    # -- port: the matching path ----------------------------------------------------------------

    def append(self, command: C) -> int:
        if not self._accepting:
            raise self._unavailable()
        self._pending.append(command)
        seq = self._last_seq = self._last_seq + 1
        if self._idle:
            self._wake.set()
        if seq - self._durable.value > self._max_pending:
            # The disk is far behind: slow the matcher down rather than grow without bound.
            self.wait_durable(seq - self._max_pending)
        return seq

    # -- port: waiting for the disk ---------------------------------------------------------------

    def wait_durable(self, seq: int, timeout: float | None = None) -> None:
        if self._durable.value < seq:
            self._check_appended(seq)
            self._durable.wait(seq, timeout)

    async def wait_durable_async(self, seq: int) -> None:
        if self._durable.value < seq:
            self._check_appended(seq)
            await self._durable.wait_async(seq)

    def subscribe(self, listener: Callable[[int], None]) -> None:
        self._durable.subscribe(listener)

    def _check_appended(self, seq: int) -> None:
        if seq > self._last_seq:
            raise ValidationError(
                f"command {seq} was never appended (last is {self._last_seq})", field="seq"
            )

    def _unavailable(self) -> UnavailableError:
        if self._durable.failure is not None:
            return self._durable.error()
        if self._thread is None and not self._closing:
            return UnavailableError("exchange journal not recovered yet")
        return UnavailableError("exchange journal is closed")

    # -- port: snapshots --------------------------------------------------------------------------

    def checkpoint(self, seq: int, state: S) -> None:
        if seq < 0:
            raise ValidationError("a snapshot covers a sequence number >= 0", field="seq")
        self.wait_durable(seq)
        self._snapshots.save(seq, self._states.encode(state))
        self._compact()

    def _compact(self) -> None:
        """Drop segments whose every command is covered by the oldest kept snapshot."""
        covered = self._snapshots.oldest_kept()
        if covered is None:
            return
        with self._segments_lock:
            segments = list_segments(self._dir)
            removed = False
            for (_, path), (next_first, _) in itertools.pairwise(segments):
                if next_first > covered + 1:
                    break
                path.unlink()
                removed = True
            if removed:
                fsync_directory(self._dir)

    # -- shutdown ---------------------------------------------------------------------------------

    def close(self) -> None:
        self._accepting = False
        self._closing = True
        thread, self._thread = self._thread, None
        if thread is not None:
            self._wake.set()
            thread.join()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._release_lock()

    # -- the flusher thread -----------------------------------------------------------------------

    def _flush_loop(self) -> None:
        pending = self._pending
        while True:
            count = len(pending)
            if count == 0:
                if self._closing:
                    return
                self._idle = True
                # Re-check after announcing idleness: append() reads _idle after queueing.
                if not pending and not self._closing:
                    self._wake.wait(0.1)
                self._wake.clear()
                self._idle = False
                continue
            batch = [pending.popleft() for _ in range(min(count, self._max_group))]
            try:
                self._write_group(batch)
            except Exception as exc:  # any failure here leaves the disk state unknown
                self._fail(exc)
                return
            self._durable.advance(self._written_seq)

    def _write_group(self, batch: list[C]) -> None:
        first = self._written_seq + 1
        frame = encode_frame(first, len(batch), self._commands.encode_batch(batch))
        if self._fd is None or self._segment_size >= self._segment_bytes:
            self._rotate(first)
        fd = self._fd
        if fd is None:
            raise IntegrityError("no journal segment open after rotation")
        self._write_synced(fd, frame, self._segment_size)
        self._segment_size += len(frame)
        self._written_seq = first + len(batch) - 1
        self.groups += 1

    def _write_synced(self, fd: int, data: bytes, offset: int) -> None:
        """Write ``data`` at ``offset`` and return only once it is on disk."""
        view = memoryview(data)
        if self._dsync_writes:
            try:
                written = os.pwritev(fd, [view], offset, os.RWF_DSYNC)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                self._dsync_writes = False  # nothing was written; use the two-call path
            else:
                if written == len(view):
                    return
                view, offset = view[written:], offset + written  # rare short write
        while view:
            written = os.pwrite(fd, view, offset)
            view, offset = view[written:], offset + written
        os.fdatasync(fd)

    def _rotate(self, first: int) -> None:
        """Start the segment whose first command is ``first`` (header synced before frames)."""
        with self._segments_lock:
            path = self._dir / segment_name(first)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                self._write_synced(fd, encode_segment_header(first), 0)
                fsync_directory(self._dir)
            except BaseException:
                os.close(fd)
                raise
            old, self._fd, self._segment_size = self._fd, fd, SEGMENT_HEADER.size
        if old is not None:
            os.close(old)

    def _fail(self, exc: Exception) -> None:
        self._accepting = False
        reason = f"{type(exc).__name__}: {exc}"
        log.error("exchange.journal_failed", directory=str(self._dir), error=reason,
                  durable_seq=self._durable.value, lost_pending=len(self._pending))
        self._durable.fail(reason)
