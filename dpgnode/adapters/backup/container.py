r"""The encrypted backup container: a header, then the payload as AES-256-GCM chunks.

Layout (all integers big-endian)::

    magic       8 bytes   b"\x89DPGBAK\n" (a high-bit byte and a newline, like PNG, so
                          7-bit or newline-translating transfers are caught at once)
    version     u16       1
    header_len  u32       at most 64 KiB
    header      JSON      {"cipher": "AES-256-GCM", "chunkSize": N, "key": {key slot},
                           "manifest": {BackupManifest.as_dict()}}
    chunks      repeated  u32 length, then ciphertext (plaintext + 16-byte tag)

Every backup has its own random 256-bit data key; the header's key slot holds it wrapped
under a key the operator holds (:mod:`.keys`). Chunk ``i`` (plaintext ``chunkSize`` bytes,
the last one shorter, possibly empty) is sealed with nonce = ``i`` as a 96-bit counter and
AAD = SHA-256(magic..header) || ``i`` (u64) || final flag (u8). Hence:

- any change to the header (manifest, key slot, chunk size) fails every chunk;
- a reordered, dropped or duplicated chunk fails (its index is in nonce and AAD);
- a file cut at a chunk boundary fails, because its last chunk was sealed as not final,
  and bytes after the final chunk are refused;
- the payload streams through in ``chunkSize`` pieces: a 1 GB database never sits in RAM.

Counter nonces are safe because no data key ever seals a second stream. Readers release a
chunk's plaintext only after its tag checked; callers must still treat the output as
unconfirmed until :attr:`DecryptingReader.finished` (the final chunk authenticated).
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dpgnode.errors import ValidationError

MAGIC = b"\x89DPGBAK\n"
VERSION = 1
CIPHER = "AES-256-GCM"
DEFAULT_CHUNK_SIZE = 1 << 20
MIN_CHUNK_SIZE = 16
MAX_CHUNK_SIZE = 16 << 20
MAX_HEADER_BYTES = 64 << 10
KEY_BYTES = 32
TAG_BYTES = 16
_PREFIX = struct.Struct(">8sHI")
_LENGTH = struct.Struct(">I")
_INDEX = struct.Struct(">Q")
_FIELD = "backup"


def _refuse(message: str) -> ValidationError:
    return ValidationError(message, field=_FIELD)


@dataclass(frozen=True, slots=True)
class Header:
    """The container's header: how to open it (key slot) and what it holds (manifest)."""

    key_slot: Mapping[str, Any]
    manifest: Mapping[str, Any]
    chunk_size: int = DEFAULT_CHUNK_SIZE

    def encode(self) -> bytes:
        """The header's bytes as written, prefix included."""
        if not MIN_CHUNK_SIZE <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise ValidationError("chunk size out of range", field="chunk_size")
        body = json.dumps(
            {
                "cipher": CIPHER,
                "chunkSize": self.chunk_size,
                "key": dict(self.key_slot),
                "manifest": dict(self.manifest),
            },
            sort_keys=True, separators=(",", ":"),
        ).encode()
        if len(body) > MAX_HEADER_BYTES:
            raise ValidationError("backup header too large", field="manifest")
        return _PREFIX.pack(MAGIC, VERSION, len(body)) + body


def read_header(source: BinaryIO) -> tuple[Header, bytes]:
    """Parse the header at the start of ``source``; returns it with its SHA-256 digest.

    Raises:
        ValidationError: not a DPG backup, an unsupported version, or a malformed header.
    """
    prefix = source.read(_PREFIX.size)
    if len(prefix) < _PREFIX.size or not prefix.startswith(MAGIC):
        raise _refuse("not a DPG backup file (bad magic)")
    _, version, length = _PREFIX.unpack(prefix)
    if version != VERSION:
        raise _refuse(f"backup format version {version} is not supported (this reads {VERSION})")
    if length > MAX_HEADER_BYTES:
        raise _refuse("backup header is larger than 64 KiB: damaged file")
    body = source.read(length)
    if len(body) != length:
        raise _refuse("backup file is truncated inside its header")
    try:
        data = json.loads(body)
        if data["cipher"] != CIPHER:
            raise ValueError(f"cipher {data['cipher']!r}")
        chunk_size = data["chunkSize"]
        if not isinstance(chunk_size, int) or not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError("chunk size")
        slot, manifest = data["key"], data["manifest"]
        if not isinstance(slot, dict) or not isinstance(manifest, dict):
            raise ValueError("key slot or manifest")
    except (ValueError, KeyError, TypeError) as exc:
        raise _refuse(f"malformed backup header: {exc}") from exc
    return Header(slot, manifest, chunk_size), hashlib.sha256(prefix + body).digest()


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _aad(digest: bytes, index: int, final: bool) -> bytes:
    return digest + _INDEX.pack(index) + (b"\x01" if final else b"\x00")


class EncryptingWriter:
    """A write-only stream that seals what it is given into the container on ``out``.

    ``close()`` seals the final chunk; without it the file is incomplete and will not
    open. ``plaintext_digest`` (SHA-256 of everything written) lets the caller check a
    read-back of the file against what went in.
    """

    def __init__(self, out: BinaryIO, data_key: bytes, header: Header) -> None:
        if len(data_key) != KEY_BYTES:
            raise ValidationError("a data key is 32 bytes", field="data_key")
        encoded = header.encode()
        self._out = out
        self._aead = AESGCM(data_key)
        self._digest = hashlib.sha256(encoded).digest()
        self._chunk = header.chunk_size
        self._buffer = bytearray()
        self._index = 0
        self._hash = hashlib.sha256()
        self._closed = False
        self.plaintext_bytes = 0
        out.write(encoded)

    @property
    def plaintext_digest(self) -> bytes:
        return self._hash.digest()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise ValueError("write to a closed backup stream")
        self._buffer += data
        self._hash.update(data)
        self.plaintext_bytes += len(data)
        # Strictly more than one chunk: whatever remains at close() is the final chunk,
        # so a payload of an exact multiple of the chunk size still ends with a final flag.
        while len(self._buffer) > self._chunk:
            self._seal(memoryview(self._buffer)[: self._chunk], final=False)
            del self._buffer[: self._chunk]
        return len(data)

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._seal(memoryview(self._buffer), final=True)
        self._buffer.clear()
        self._closed = True
        self._out.flush()

    def _seal(self, plain: memoryview, *, final: bool) -> None:
        sealed = self._aead.encrypt(
            _nonce(self._index), bytes(plain), _aad(self._digest, self._index, final)
        )
        self._out.write(_LENGTH.pack(len(sealed)))
        self._out.write(sealed)
        self._index += 1


@dataclass(slots=True)
class _ReadState:
    index: int = 0
    next_length: int | None = None
    finished: bool = False
    buffer: bytearray = field(default_factory=bytearray)


class DecryptingReader:
    """A read-only stream of the payload after ``read_header``; each chunk checked first.

    Raises ``ValidationError(field="backup")`` naming the chunk when a tag does not match:
    tampering, reordering, truncation or trailing data.
    """

    def __init__(self, source: BinaryIO, data_key: bytes, header: Header, digest: bytes) -> None:
        if len(data_key) != KEY_BYTES:
            raise ValidationError("a data key is 32 bytes", field="data_key")
        self._source = source
        self._aead = AESGCM(data_key)
        self._digest = digest
        self._chunk = header.chunk_size
        self._state = _ReadState()
        self.plaintext_bytes = 0

    @property
    def finished(self) -> bool:
        """True once the final chunk authenticated and nothing followed it."""
        return self._state.finished

    def read(self, size: int = -1) -> bytes:
        state = self._state
        while (size < 0 or len(state.buffer) < size) and not state.finished:
            state.buffer += self._open_next()
        take = len(state.buffer) if size < 0 else min(size, len(state.buffer))
        out = bytes(state.buffer[:take])
        del state.buffer[:take]
        return out

    def drain(self) -> None:
        """Read (and authenticate) to the end, discarding: truncation shows up here."""
        while self.read(self._chunk):
            pass

    def _length(self) -> int | None:
        raw = self._source.read(_LENGTH.size)
        if not raw:
            return None
        if len(raw) < _LENGTH.size:
            raise _refuse("backup file is truncated or has trailing bytes after its last chunk")
        length = int(_LENGTH.unpack(raw)[0])
        if not TAG_BYTES <= length <= self._chunk + TAG_BYTES:
            raise _refuse(f"backup chunk {self._state.index} has an impossible length: damaged")
        return length

    def _open_next(self) -> bytes:
        state = self._state
        length = state.next_length if state.index else self._length()
        if length is None:
            raise _refuse("backup file is truncated: it ends before its first chunk")
        sealed = self._source.read(length)
        if len(sealed) != length:
            raise _refuse(f"backup file is truncated inside chunk {state.index}")
        state.next_length = self._length()
        final = state.next_length is None
        if not final and length != self._chunk + TAG_BYTES:
            raise _refuse(f"backup chunk {state.index} is short but not the last: damaged")
        try:
            plain = self._aead.decrypt(
                _nonce(state.index), sealed, _aad(self._digest, state.index, final)
            )
        except InvalidTag as exc:
            where = (
                "its last chunk does not authenticate as the final one: truncated or tampered"
                if final else f"chunk {state.index} does not authenticate: tampered or reordered"
            )
            raise _refuse(f"backup file is damaged: {where}") from exc
        state.index += 1
        state.finished = final
        self.plaintext_bytes += len(plain)
        return plain
