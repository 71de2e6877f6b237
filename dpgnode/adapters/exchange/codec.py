"""How commands and snapshots become bytes in the journal and snapshot files.

A journal frame holds a whole group of commands, so the command codec works on batches:
one msgpack array per frame is one C call for hundreds of commands, which keeps the flusher's
share of the GIL small. msgspec decodes into the declared type and rejects anything else, so
a frame that passed its CRC but does not decode is reported as corruption, not replayed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from dpgnode.errors import IntegrityError

C = TypeVar("C")
S = TypeVar("S")


class BatchCodec(Protocol[C]):
    """Turns a group of commands into one frame payload and back (exactly)."""

    def encode_batch(self, commands: Sequence[C]) -> bytes:
        """The payload of one frame holding ``commands`` in order."""
        ...

    def decode_batch(self, payload: bytes) -> list[C]:
        """The commands of one payload; raises ``IntegrityError`` if it does not decode."""
        ...


class StateCodec(Protocol[S]):
    """Turns an engine snapshot into bytes and back (exactly)."""

    def encode(self, state: S) -> bytes:
        """The bytes of ``state``."""
        ...

    def decode(self, data: bytes) -> S:
        """The state; raises ``IntegrityError`` if ``data`` does not decode."""
        ...


class MsgpackBatchCodec(Generic[C]):
    """Commands of type ``command_type`` (tuples, msgspec Structs, dataclasses) as msgpack."""

    def __init__(self, command_type: Any) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder: msgspec.msgpack.Decoder[list[C]] = msgspec.msgpack.Decoder(
            list[command_type]
        )

    def encode_batch(self, commands: Sequence[C]) -> bytes:
        return self._encoder.encode(commands)

    def decode_batch(self, payload: bytes) -> list[C]:
        try:
            return self._decoder.decode(payload)
        except msgspec.DecodeError as exc:
            raise IntegrityError(f"journal frame does not decode: {exc}") from exc


class MsgpackStateCodec(Generic[S]):
    """A snapshot of type ``state_type`` as msgpack."""

    def __init__(self, state_type: Any) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder: msgspec.msgpack.Decoder[S] = msgspec.msgpack.Decoder(state_type)

    def encode(self, state: S) -> bytes:
        return self._encoder.encode(state)

    def decode(self, data: bytes) -> S:
        try:
            return self._decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise IntegrityError(f"snapshot does not decode: {exc}") from exc
