"""Output descriptors (BIP380-386, BIP389) for single-key watch-only accounts, and checksums.

Supported: ``pkh(KEY)``, ``wpkh(KEY)``, ``sh(wpkh(KEY))`` and ``tr(KEY)`` (key path only,
BIP86) where ``KEY`` is ``[fingerprint/origin/path]xpub.../steps/*``; steps are unhardened
indices with at most one BIP389 multipath step ``<0;1>``, and the trailing wildcard is
required (a watch-only account derives many addresses). An optional ``#checksum`` is
verified with the BIP380 algorithm.

This module parses the text into a :class:`ParsedDescriptor` (strings and integers only);
``extkeys`` turns it into an ``AccountKey`` and renders one back with
:func:`add_checksum`.

Invariants this module keeps:
- a present checksum that does not match refuses the whole descriptor;
- a private key (``xprv``/``tprv``/WIF) or a hardened wildcard is refused without echoing it;
- any input either parses or raises :class:`~dpgnode.errors.ValidationError`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from dpgnode.domain.custody.bip32 import HARDENED, format_path, parse_path
from dpgnode.domain.custody.networks import AddressType
from dpgnode.errors import ValidationError

_INPUT_CHARSET = (
    "0123456789()[],'/*abcdefgh@:$%{}"
    "IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~"
    'ijklmnopqrstuvwxyzABCDEFGH`#"\\ '
)
_INPUT_INDEX = {c: i for i, c in enumerate(_INPUT_CHARSET)}
_CHECKSUM_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0xF5DEE51989, 0xA9FDCA3312, 0x1BAB10E32D, 0x3706B1677A, 0x644D626FFD)
MAX_DESCRIPTOR_LENGTH = 1000
_WRAPPERS = (
    ("sh(wpkh(", "))", AddressType.P2SH_P2WPKH),
    ("wpkh(", ")", AddressType.P2WPKH),
    ("pkh(", ")", AddressType.P2PKH),
    ("tr(", ")", AddressType.P2TR),
)
_FUNCTION_OF = {t: prefix[:-1] for prefix, _, t in _WRAPPERS if t is not AddressType.P2SH_P2WPKH}
_ORIGIN = re.compile(r"^\[([0-9a-fA-F]{8})((?:/[0-9]{1,10}['hH]?)*)\]")
_INDEX = re.compile(r"[0-9]{1,10}")


def _polymod(symbols: Sequence[int]) -> int:
    chk = 1
    for value in symbols:
        top = chk >> 35
        chk = (chk & 0x7FFFFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= _GENERATOR[i] if (top >> i) & 1 else 0
    return chk


def _expand(text: str, field: str) -> list[int]:
    symbols: list[int] = []
    groups: list[int] = []
    for char in text:
        value = _INPUT_INDEX.get(char)
        if value is None:
            raise ValidationError("descriptor has a character outside its charset", field=field)
        symbols.append(value & 31)
        groups.append(value >> 5)
        if len(groups) == 3:
            symbols.append(groups[0] * 9 + groups[1] * 3 + groups[2])
            groups = []
    if len(groups) == 1:
        symbols.append(groups[0])
    elif len(groups) == 2:
        symbols.append(groups[0] * 3 + groups[1])
    return symbols


def descriptor_checksum(text: str, *, field: str = "descriptor") -> str:
    """The 8-character BIP380 checksum of a descriptor without its ``#checksum``.

    Raises:
        ValidationError: a character outside the descriptor charset.
    """
    checksum = _polymod([*_expand(text, field), 0, 0, 0, 0, 0, 0, 0, 0]) ^ 1
    return "".join(_CHECKSUM_CHARSET[(checksum >> (5 * (7 - i))) & 31] for i in range(8))


def add_checksum(text: str) -> str:
    """``text#checksum``."""
    return f"{text}#{descriptor_checksum(text)}"


def strip_checksum(text: str, *, field: str = "descriptor") -> str:
    """The descriptor without ``#checksum``, after verifying the checksum when present.

    Raises:
        ValidationError: a malformed or mismatching checksum.
    """
    body, sep, checksum = text.partition("#")
    if not sep:
        return body
    if len(checksum) != 8 or not all(c in _CHECKSUM_CHARSET for c in checksum):
        raise ValidationError("descriptor checksum must be 8 bech32 characters", field=field)
    if descriptor_checksum(body, field=field) != checksum:
        raise ValidationError("descriptor checksum mismatch", field=field)
    return body


@dataclass(frozen=True, slots=True)
class KeyOrigin:
    """Where an account key sits under its master: ``[d34db33f/84h/0h/0h]``."""

    fingerprint: bytes
    """Four-byte fingerprint of the master key."""
    path: tuple[int, ...]

    def __str__(self) -> str:
        steps = format_path(self.path, prefix="")
        return self.fingerprint.hex() + (f"/{steps}" if steps else "")


@dataclass(frozen=True, slots=True)
class ParsedDescriptor:
    """The parts of a single-key ranged descriptor."""

    address_type: AddressType
    origin: KeyOrigin | None
    key_text: str
    branches: tuple[tuple[int, ...], ...]
    """One path (relative to the key, wildcard excluded) per BIP389 alternative."""


def parse_descriptor(text: str, *, field: str = "descriptor") -> ParsedDescriptor:
    """Split a descriptor into address type, key origin, key text and branch paths.

    The key text is returned as written; the caller decodes it (and refuses private keys).

    Raises:
        ValidationError: checksum mismatch, an unsupported script, a missing wildcard,
            hardened steps after the key, or a malformed origin.
    """
    if not isinstance(text, str) or len(text) > MAX_DESCRIPTOR_LENGTH:
        raise ValidationError("descriptor too long or not a string", field=field)
    address_type, inner = _unwrap(strip_checksum(text.strip(), field=field), field)
    if any(c in inner for c in "(),{}"):
        raise ValidationError(
            "only single-key descriptors are supported (no script trees or multisig)",
            field=field,
        )
    origin, rest = _parse_origin(inner, field)
    key_text, *steps = rest.split("/")
    return ParsedDescriptor(address_type, origin, key_text, _branches(steps, field))


def _unwrap(body: str, field: str) -> tuple[AddressType, str]:
    """The address type of the script function(s) around the key, and the key expression."""
    for prefix, suffix, address_type in _WRAPPERS:
        if body.startswith(prefix) and body.endswith(suffix):
            return address_type, body[len(prefix) : len(body) - len(suffix)]
    raise ValidationError(
        "supported descriptors: pkh(KEY), wpkh(KEY), sh(wpkh(KEY)), tr(KEY)", field=field
    )


def _parse_origin(inner: str, field: str) -> tuple[KeyOrigin | None, str]:
    if not inner.startswith("["):
        return None, inner
    match = _ORIGIN.match(inner)
    if match is None:
        raise ValidationError("malformed key origin [fingerprint/path]", field=field)
    path = parse_path(match[2].lstrip("/"), field=field) if match[2] else ()
    return KeyOrigin(bytes.fromhex(match[1]), path), inner[match.end() :]


def _branches(steps: list[str], field: str) -> tuple[tuple[int, ...], ...]:
    if not steps or steps[-1] != "*":
        hardened = bool(steps) and steps[-1] in ("*'", "*h", "*H")
        raise ValidationError(
            "a hardened wildcard needs the private key"
            if hardened
            else "an account descriptor must end with /* (ranged)",
            field=field,
        )
    alternatives: list[tuple[int, ...]] = []
    for step in steps[:-1]:
        if step.startswith("<") and step.endswith(">"):
            values = tuple(_unhardened(v, field) for v in step[1:-1].split(";"))
            if len(values) < 2 or len(set(values)) != len(values):
                raise ValidationError(
                    "a multipath step needs two or more distinct indices", field=field
                )
            alternatives.append(values)
        else:
            alternatives.append((_unhardened(step, field),))
    if sum(len(a) > 1 for a in alternatives) > 1:
        raise ValidationError("at most one multipath step is allowed (BIP389)", field=field)
    width = max((len(a) for a in alternatives), default=1)
    return tuple(tuple(a[i] if len(a) > 1 else a[0] for a in alternatives) for i in range(width))


def _unhardened(step: str, field: str) -> int:
    if not _INDEX.fullmatch(step) or int(step) >= HARDENED:
        raise ValidationError(
            "steps after an extended public key must be unhardened indices", field=field
        )
    return int(step)


def render_descriptor(
    address_type: AddressType,
    origin: KeyOrigin | None,
    key_text: str,
    branches: Sequence[Sequence[int]],
) -> str:
    """A checksummed descriptor; several branches are written as one BIP389 multipath step.

    Raises:
        ValidationError: ``AddressType.EVM`` (no descriptor form) or branches that differ in
            more than one step.
    """
    if address_type is AddressType.EVM:
        raise ValidationError("EVM accounts have no output descriptor", field="address_type")
    steps: list[str] = []
    for position in range(len(branches[0])):
        values = [branch[position] for branch in branches]
        if len(set(values)) == 1:
            steps.append(str(values[0]))
        else:
            steps.append("<" + ";".join(str(v) for v in values) + ">")
    if sum(s.startswith("<") for s in steps) > 1:
        raise ValidationError("branches differ in more than one step", field="branches")
    key = (f"[{origin}]" if origin is not None else "") + "/".join([key_text, *steps, "*"])
    if address_type is AddressType.P2SH_P2WPKH:
        return add_checksum(f"sh(wpkh({key}))")
    return add_checksum(f"{_FUNCTION_OF[address_type]}({key})")
