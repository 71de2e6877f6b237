"""The payload inside the container: a streamed tar of the database and the configuration.

Members have fixed names (``database/dpg.sqlite3`` or ``database/dpg.pgdump``, and
``config/dpg.toml`` when the node has one). Reading extracts only those names, only as
regular files, only to paths the caller chose: a crafted archive cannot write elsewhere.
Extracted files are created exclusively with mode 0600 and fsynced.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

from dpgnode.domain.backup import DatabaseKind
from dpgnode.errors import ValidationError

DATABASE_MEMBERS = {
    DatabaseKind.SQLITE: "database/dpg.sqlite3",
    DatabaseKind.POSTGRESQL: "database/dpg.pgdump",
}
CONFIG_MEMBER = "config/dpg.toml"
_BUFFER = 1 << 20
_TAR_BUFFER = 256 << 10  # tarfile re-copies its buffer on each write: not too large

Advance = Callable[[int], None]
"""Called with the number of payload bytes just moved."""


class _Sink(Protocol):
    def write(self, data: bytes) -> int: ...


class _Source(Protocol):
    def read(self, size: int = -1) -> bytes: ...


class _Counting:
    """A file reader that reports each read's size (tar pulls member data through it)."""

    def __init__(self, inner: BinaryIO, advance: Advance | None) -> None:
        self._inner = inner
        self._advance = advance

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        if self._advance is not None and data:
            self._advance(len(data))
        return data


def write_members(
    sink: _Sink, members: Sequence[tuple[str, Path]], advance: Advance | None = None
) -> None:
    """Stream each ``(name, path)`` into ``sink`` as one tar archive."""
    with tarfile.open(  # type: ignore[call-overload]
        fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT, bufsize=_TAR_BUFFER
    ) as tar:
        for name, path in members:
            info = tarfile.TarInfo(name)
            stat = path.stat()
            info.size, info.mtime, info.mode = stat.st_size, int(stat.st_mtime), 0o600
            with path.open("rb") as handle:
                tar.addfile(info, _Counting(handle, advance))


def read_members(
    source: _Source, targets: Mapping[str, Path], advance: Advance | None = None
) -> list[str]:
    """Extract the archive's members to ``targets[name]``; returns the names found.

    Raises:
        ValidationError: a member that is not a regular file or not in ``targets``, or a
            member present twice.
    """
    found: list[str] = []
    with tarfile.open(fileobj=source, mode="r|", bufsize=_TAR_BUFFER) as tar:  # type: ignore[call-overload]
        for member in tar:
            target = targets.get(member.name)
            if target is None or not member.isfile() or member.name in found:
                raise ValidationError(
                    f"unexpected entry {member.name[:100]!r} in the backup", field="backup"
                )
            data = tar.extractfile(member)
            if data is None:
                raise ValidationError(f"unreadable entry {member.name!r}", field="backup")
            _copy_new(data, target, advance)
            found.append(member.name)
    return found


def _copy_new(data: BinaryIO, target: Path, advance: Advance | None) -> None:
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        while chunk := data.read(_BUFFER):
            out.write(chunk)
            if advance is not None:
                advance(len(chunk))
        out.flush()
        os.fsync(out.fileno())
