"""Best-effort zeroing of secrets held in Python buffers, and what it cannot do.

An opened seed and the keys derived from it must not outlive the signature they were opened
for. Python gives no guarantee of that, so this is damage limitation, not a proof:

- ``bytearray`` buffers are zeroed in place.
- ``bytes`` are immutable, yet python-pkcs11 returns the decrypted seed as ``bytes`` and the
  BIP32 code works on ``bytes``. On CPython the object's own storage is overwritten with
  ``ctypes.memset`` (the layout is ``PyBytesObject``: the data starts where
  ``sys.getsizeof(b) - len(b) - 1`` says). This is only done on objects this adapter created
  and drops right after; empty and one-byte ``bytes`` are shared singletons and are skipped.
  Other interpreters get no wipe.
- Not reachable from here: copies made inside libraries (the HMAC and SHA-512 states of a
  derivation, coincurve's/libsecp256k1's copies of a scalar, python-pkcs11's C buffers), freed
  memory that the allocator has not reused yet, pages swapped to disk, and core dumps. Run the
  signer as its own process with core dumps disabled (``ulimit -c 0``) and swap encrypted or
  off when that matters; keep the seed in the HSM (hot keys) when it matters most.
"""

from __future__ import annotations

import ctypes
import sys

_CPYTHON = sys.implementation.name == "cpython"
_BYTES_DATA_OFFSET = sys.getsizeof(b"") - 1  # header size of a PyBytesObject on CPython


def wipe(*buffers: bytes | bytearray | None) -> None:
    """Overwrite each buffer's content with zeros (see the module docstring for the limits)."""
    for buffer in buffers:
        if isinstance(buffer, bytearray):
            buffer[:] = bytes(len(buffer))
        elif type(buffer) is bytes and len(buffer) > 1 and _CPYTHON:
            ctypes.memset(id(buffer) + _BYTES_DATA_OFFSET, 0, len(buffer))
