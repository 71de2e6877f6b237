"""Base58Check (Bitcoin), bech32 / bech32m (BIP173, BIP350) and hash160.

These encodings are small, fixed by their specifications and on the hot path of address
derivation, so they are written here from the BIPs' reference code rather than taken from a
dependency (the ``base58`` and ``bech32`` packages are not runtime dependencies of the node).

Invariants this module keeps:
- a decoder either returns exactly the bytes that were encoded (checksum verified) or raises
  :class:`~dpgnode.errors.ValidationError` naming ``field``; no other exception escapes on
  any input string;
- inputs are length-bounded before any arithmetic, so a hostile string costs linear time;
- error messages never contain the input (it may be a private key or a seed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from functools import lru_cache

from dpgnode.errors import ValidationError

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}
MAX_BASE58_LENGTH = 200
"""Longest base58 text accepted (an extended key is 111 characters, an address at most 35)."""


def _ripemd160_hashlib(data: bytes) -> bytes:
    return hashlib.new("ripemd160", data).digest()


def _ripemd160_impl() -> Callable[[bytes], bytes]:
    """RIPEMD-160 from OpenSSL when it offers one, else pycryptodome's.

    OpenSSL 3 moved RIPEMD-160 to its legacy provider, which some distributions do not
    load; pycryptodome (a dependency of eth-account) always has it.
    """
    try:
        hashlib.new("ripemd160", b"")
    except ValueError:  # pragma: no cover - depends on the OpenSSL build
        from Crypto.Hash import RIPEMD160

        def _ripemd160_pycryptodome(data: bytes) -> bytes:
            return RIPEMD160.new(data).digest()

        return _ripemd160_pycryptodome
    return _ripemd160_hashlib


ripemd160 = _ripemd160_impl()


def hash160(data: bytes) -> bytes:
    """RIPEMD-160 of SHA-256: the 20-byte key and script hash of P2PKH, P2WPKH and P2SH."""
    return ripemd160(hashlib.sha256(data).digest())


def sha256d(data: bytes) -> bytes:
    """Double SHA-256 (checksums, transaction ids)."""
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def b58encode(data: bytes) -> str:
    """Base58 text of ``data`` (leading zero bytes become leading ``1``)."""
    number = int.from_bytes(data, "big")
    out: list[str] = []
    while number:
        number, rem = divmod(number, 58)
        out.append(_B58_ALPHABET[rem])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58check_encode(payload: bytes) -> str:
    """Base58Check: ``payload`` followed by the first four bytes of its double SHA-256."""
    return b58encode(payload + sha256d(payload)[:4])


def b58check_decode(text: str, *, field: str) -> bytes:
    """The payload of a Base58Check string, checksum verified.

    Raises:
        ValidationError: not a string, too long, a character outside the alphabet, or a
            wrong checksum.
    """
    if not isinstance(text, str) or not text or len(text) > MAX_BASE58_LENGTH:
        raise ValidationError("not a base58 string of a plausible length", field=field)
    number = 0
    for char in text:
        digit = _B58_INDEX.get(char)
        if digit is None:
            raise ValidationError("invalid base58 character", field=field)
        number = number * 58 + digit
    pad = len(text) - len(text.lstrip("1"))
    raw = b"\0" * pad + number.to_bytes((number.bit_length() + 7) // 8, "big")
    if len(raw) < 5:
        raise ValidationError("base58 string too short", field=field)
    payload, checksum = raw[:-4], raw[-4:]
    if sha256d(payload)[:4] != checksum:
        raise ValidationError("base58 checksum mismatch", field=field)
    return payload


# -- bech32 / bech32m ------------------------------------------------------------------------

BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {c: i for i, c in enumerate(BECH32_CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


class Bech32Variant(Enum):
    """The two checksum constants: bech32 (BIP173, witness v0) and bech32m (BIP350, v1+)."""

    BECH32 = 1
    BECH32M = 0x2BC830A3


# The BCH generator folded into one table: entry ``top`` is the XOR of the generator terms
# selected by the five bits shifted out, so each symbol costs one lookup instead of a loop.
def _fold(top: int) -> int:
    folded = 0
    for i in range(5):
        if (top >> i) & 1:
            folded ^= _GENERATOR[i]
    return folded


_POLYMOD_TABLE = tuple(_fold(top) for top in range(32))


def _polymod(values: Iterable[int], chk: int = 1) -> int:
    table = _POLYMOD_TABLE
    for value in values:
        chk = ((chk & 0x1FFFFFF) << 5) ^ value ^ table[chk >> 25]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


@lru_cache(maxsize=64)
def _hrp_state(hrp: str) -> int:
    """Checksum state after the expanded hrp: the same for every address of a network."""
    return _polymod(_hrp_expand(hrp))


def bech32_encode(hrp: str, data: Sequence[int], variant: Bech32Variant) -> str:
    """bech32 or bech32m string of ``hrp`` and 5-bit ``data``."""
    polymod = _polymod((*data, 0, 0, 0, 0, 0, 0), _hrp_state(hrp)) ^ variant.value
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    charset = BECH32_CHARSET
    return hrp + "1" + "".join([charset[d] for d in data] + [charset[d] for d in checksum])


def bech32_decode(text: str, *, field: str) -> tuple[str, list[int], Bech32Variant]:
    """Human-readable part, 5-bit data (checksum removed) and variant of a bech32(m) string.

    Raises:
        ValidationError: mixed case, characters outside US-ASCII 33..126 or the charset,
            longer than 90 characters, or a checksum valid under neither constant.
    """
    if not isinstance(text, str) or len(text) > 90:
        raise ValidationError("not a bech32 string of a plausible length", field=field)
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise ValidationError("invalid character in bech32 string", field=field)
    if text.lower() != text and text.upper() != text:
        raise ValidationError("bech32 string mixes upper and lower case", field=field)
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise ValidationError("bech32 separator missing or misplaced", field=field)
    hrp = text[:pos]
    data: list[int] = []
    for char in text[pos + 1 :]:
        digit = _BECH32_INDEX.get(char)
        if digit is None:
            raise ValidationError("invalid bech32 character", field=field)
        data.append(digit)
    constant = _polymod(data, _hrp_state(hrp))
    for variant in Bech32Variant:
        if constant == variant.value:
            return hrp, data[:-6], variant
    raise ValidationError("bech32 checksum mismatch", field=field)


def convert_bits(data: Sequence[int], from_bits: int, to_bits: int, *, pad: bool) -> list[int]:
    """Regroup ``data`` from ``from_bits``-bit to ``to_bits``-bit values (BIP173).

    Raises:
        ValueError: a value out of range or, without ``pad``, non-zero padding / a whole
            spare group; callers turn it into a ValidationError naming their field.
    """
    acc = 0
    bits = 0
    out: list[int] = []
    maxv = (1 << to_bits) - 1
    for value in data:
        if value < 0 or value >> from_bits:
            raise ValueError("value out of range")
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    elif bits >= from_bits or ((acc << (to_bits - bits)) & maxv):
        raise ValueError("invalid padding")
    return out


def _to_5bit(data: bytes) -> list[int]:
    """``convert_bits(data, 8, 5, pad=True)`` through one big integer (hot path: addresses)."""
    bits = len(data) * 8
    groups = -(-bits // 5)
    number = int.from_bytes(data, "big") << (groups * 5 - bits)
    return [(number >> shift) & 31 for shift in range(5 * (groups - 1), -1, -5)]


def encode_segwit(hrp: str, version: int, program: bytes) -> str:
    """Segwit address: bech32 for witness v0, bech32m for v1..16 (BIP350)."""
    variant = Bech32Variant.BECH32 if version == 0 else Bech32Variant.BECH32M
    return bech32_encode(hrp, [version, *_to_5bit(program)], variant)


def decode_segwit(text: str, *, field: str) -> tuple[str, int, bytes]:
    """Human-readable part, witness version and program of a segwit address.

    Raises:
        ValidationError: anything BIP173/BIP350 forbids: bad checksum, the wrong checksum
            variant for the version, version above 16, program length outside 2..40, or a
            v0 program that is neither 20 nor 32 bytes.
    """
    hrp, data, variant = bech32_decode(text, field=field)
    if not data:
        raise ValidationError("segwit address has no witness version", field=field)
    version = data[0]
    if version > 16:
        raise ValidationError("witness version above 16", field=field)
    expected = Bech32Variant.BECH32 if version == 0 else Bech32Variant.BECH32M
    if variant is not expected:
        raise ValidationError(
            "witness v0 needs a bech32 checksum, v1+ bech32m (BIP350)", field=field
        )
    try:
        program = bytes(convert_bits(data[1:], 5, 8, pad=False))
    except ValueError:
        raise ValidationError("invalid witness program padding", field=field) from None
    if not 2 <= len(program) <= 40:
        raise ValidationError("witness program length outside 2..40 bytes", field=field)
    if version == 0 and len(program) not in (20, 32):
        raise ValidationError("witness v0 program must be 20 or 32 bytes", field=field)
    return hrp, version, program
