"""BIP32 hierarchical deterministic keys: CKDpriv, CKDpub, paths and serialization.

Public surface:
- :func:`parse_path` / :func:`format_path`, :data:`HARDENED`;
- :class:`ExtendedPublicKey` (watch-only: ``child``, ``derive_path``, ``serialize``);
- :class:`ExtendedPrivateKey` (signer only: ``child``, ``derive_path``, ``public``,
  ``serialize``), :func:`master_from_seed`;
- :func:`decode_extended_public_key` / :func:`decode_extended_private_key` (base58check);
- :class:`ChildPoints` (the address fast path: CKDpub of many children of one node, as raw
  libsecp256k1 points).

Invariants this module keeps:
- a private key never appears in a ``repr``, an error message or an exception chain;
- a decoded key is fully validated (length, version, depth/fingerprint/index consistency,
  key prefix, point on the curve, scalar in ``1..n-1``): anything else is a
  :class:`~dpgnode.errors.ValidationError` naming the field;
- the public derivation of ``k`` equals the public key of the private derivation (BIP32),
  checked against the BIP32 test vectors in ``tests/unit/domain/custody``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from coincurve import PrivateKey, PublicKey
from coincurve._libsecp256k1 import ffi, lib  # type: ignore[import-not-found]
from coincurve.context import GLOBAL_CONTEXT

from dpgnode.domain.custody.encoding import b58check_decode, b58check_encode, hash160
from dpgnode.domain.custody.networks import (
    KEY_VERSIONS_BY_INT,
    KeyVersion,
    Network,
    default_key_version,
    key_version,
)
from dpgnode.errors import ValidationError

HARDENED = 0x8000_0000
"""Child indices at or above this are hardened (``i'`` / ``ih``)."""
CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MAX_DEPTH = 255
_STEP = re.compile(r"([0-9]{1,10})(['hH]?)")

SECP256K1_CTX: Any = GLOBAL_CONTEXT.ctx
"""coincurve's libsecp256k1 context, for the fast paths calling the library directly."""
Secp256k1Pubkey = Any
"""A cffi ``secp256k1_pubkey *`` (64 opaque bytes; coincurve's ``PublicKey.public_key``)."""


def parse_path(text: str | Sequence[int], *, field: str = "path") -> tuple[int, ...]:
    """Child indices of a derivation path.

    Accepts ``m/84'/0'/0'``, ``m/84h/0h/0h``, ``84h/0/1`` (relative), ``m`` (empty) or a
    sequence of integer indices (hardened ones already ``>= HARDENED``).

    Raises:
        ValidationError: a malformed step, an index beyond ``2**31 - 1`` before hardening,
            or more than 255 levels.
    """
    if not isinstance(text, str):
        indices = tuple(text)
        if any(type(i) is not int or not 0 <= i <= 0xFFFF_FFFF for i in indices):
            raise ValidationError("path indices must be integers in 0..2**32-1", field=field)
        if len(indices) > MAX_DEPTH:
            raise ValidationError("path deeper than 255 levels", field=field)
        return indices
    if len(text) > 4096:
        raise ValidationError("path too long", field=field)
    if text in ("", "m"):
        return ()
    steps = text.split("/")
    if steps[0] == "m":
        steps = steps[1:]
    if len(steps) > MAX_DEPTH:
        raise ValidationError("path deeper than 255 levels", field=field)
    out: list[int] = []
    for step in steps:
        match = _STEP.fullmatch(step)
        if match is None or int(match[1]) >= HARDENED:
            raise ValidationError("malformed derivation path step", field=field)
        out.append(int(match[1]) + (HARDENED if match[2] else 0))
    return tuple(out)


def format_path(path: Sequence[int], *, marker: str = "h", prefix: str = "m") -> str:
    """``m/84h/0h/0h`` for ``(84|H, 0|H, 0|H)``; ``prefix=""`` gives a relative path."""
    steps = [f"{i - HARDENED}{marker}" if i >= HARDENED else str(i) for i in path]
    return "/".join([prefix, *steps] if prefix else steps)


def _check_index(index: int) -> None:
    if type(index) is not int or not 0 <= index <= 0xFFFF_FFFF:
        raise ValidationError("child index must be an integer in 0..2**32-1", field="index")


@dataclass(frozen=True, slots=True)
class ExtendedPublicKey:
    """A BIP32 node without its private key: enough to derive non-hardened children."""

    network: Network
    depth: int
    parent_fingerprint: bytes
    child_number: int
    chain_code: bytes
    public_key: bytes
    """33-byte compressed SEC1 point."""

    def fingerprint(self) -> bytes:
        """First four bytes of hash160 of the public key (BIP32 key identifier)."""
        return hash160(self.public_key)[:4]

    def child(self, index: int) -> ExtendedPublicKey:
        """CKDpub: the non-hardened child ``index``.

        Raises:
            ValidationError: a hardened index (needs the private key), or the one-in-2**127
                index whose child is invalid (BIP32: use the next index).
        """
        _check_index(index)
        if index >= HARDENED:
            raise ValidationError(
                "hardened derivation needs the private key; a public key derives only "
                "non-hardened children",
                field="path",
            )
        if self.depth >= MAX_DEPTH:
            raise ValidationError("path deeper than 255 levels", field="path")
        digest = hmac.digest(
            self.chain_code, self.public_key + index.to_bytes(4, "big"), hashlib.sha512
        )
        try:
            point = PublicKey(self.public_key).add(digest[:32])
        except ValueError:
            raise ValidationError(
                "this index yields an invalid key (BIP32); use the next index", field="index"
            ) from None
        return ExtendedPublicKey(
            self.network,
            self.depth + 1,
            self.fingerprint(),
            index,
            digest[32:],
            point.format(compressed=True),
        )

    def derive_path(self, path: str | Sequence[int]) -> ExtendedPublicKey:
        """The descendant at ``path`` relative to this key (``"0/5"`` or ``"m/0/5"``)."""
        node = self
        for index in parse_path(path):
            node = node.child(index)
        return node

    def serialize(self, version: str | KeyVersion | None = None) -> str:
        """Base58Check text with ``version`` (``"zpub"``...; default xpub / tpub).

        Raises:
            ValidationError: a private version, or one of the other network family.
        """
        chosen = _resolve_version(version, self.network, private=False)
        return b58check_encode(self._payload(chosen.version, self.public_key))

    def _payload(self, version: int, key: bytes) -> bytes:
        return (
            version.to_bytes(4, "big")
            + bytes([self.depth])
            + self.parent_fingerprint
            + self.child_number.to_bytes(4, "big")
            + self.chain_code
            + key
        )


@dataclass(frozen=True, slots=True)
class ExtendedPrivateKey:
    """A BIP32 node with its private key. Only the signer holds these; never log or store one."""

    network: Network
    depth: int
    parent_fingerprint: bytes
    child_number: int
    chain_code: bytes = field(repr=False)
    secret: bytes = field(repr=False)
    """The 32-byte private scalar."""

    def __repr__(self) -> str:
        return (
            f"ExtendedPrivateKey(network={self.network.value!r}, depth={self.depth}, "
            f"child_number={self.child_number}, secret=<redacted>)"
        )

    __str__ = __repr__

    def public_key(self) -> bytes:
        """33-byte compressed public key of this node."""
        return PrivateKey(self.secret).public_key.format(compressed=True)

    def public(self) -> ExtendedPublicKey:
        """The watch-only twin of this node (same chain code, public key)."""
        return ExtendedPublicKey(
            self.network,
            self.depth,
            self.parent_fingerprint,
            self.child_number,
            self.chain_code,
            self.public_key(),
        )

    def fingerprint(self) -> bytes:
        """First four bytes of hash160 of the public key (BIP32 key identifier)."""
        return hash160(self.public_key())[:4]

    def child(self, index: int) -> ExtendedPrivateKey:
        """CKDpriv: child ``index`` (hardened when ``index >= HARDENED``).

        Raises:
            ValidationError: the one-in-2**127 index whose child is invalid (use the next).
        """
        _check_index(index)
        if self.depth >= MAX_DEPTH:
            raise ValidationError("path deeper than 255 levels", field="path")
        parent_public = self.public_key()
        data = b"\0" + self.secret if index >= HARDENED else parent_public
        digest = hmac.digest(self.chain_code, data + index.to_bytes(4, "big"), hashlib.sha512)
        try:
            child_secret = PrivateKey(self.secret).add(digest[:32]).secret
        except ValueError:
            raise ValidationError(
                "this index yields an invalid key (BIP32); use the next index", field="index"
            ) from None
        return ExtendedPrivateKey(
            self.network,
            self.depth + 1,
            hash160(parent_public)[:4],
            index,
            digest[32:],
            child_secret,
        )

    def derive_path(self, path: str | Sequence[int]) -> ExtendedPrivateKey:
        """The descendant at ``path`` (``"m/84'/0'/0'"``; relative to this node)."""
        node = self
        for index in parse_path(path):
            node = node.child(index)
        return node

    def serialize(self, version: str | KeyVersion | None = None) -> str:
        """Base58Check text with ``version`` (``"zprv"``...; default xprv / tprv).

        Raises:
            ValidationError: a public version, or one of the other network family.
        """
        chosen = _resolve_version(version, self.network, private=True)
        payload = (
            chosen.version.to_bytes(4, "big")
            + bytes([self.depth])
            + self.parent_fingerprint
            + self.child_number.to_bytes(4, "big")
            + self.chain_code
            + b"\0"
            + self.secret
        )
        return b58check_encode(payload)


class PointTweaker:
    """``base + tweak*G`` on raw libsecp256k1 points (shared by the address fast paths).

    Computes ``tweak*G`` with ``secp256k1_ec_pubkey_create`` (the generator-only comb) and
    adds it with ``secp256k1_ec_pubkey_combine``: about 10% faster than
    ``secp256k1_ec_pubkey_tweak_add``, whose general ``1*base + tweak*G`` multiplication
    also builds a table for ``base``. When ``create`` refuses the tweak (zero or >= n) or
    the sum is infinity, ``tweak_add`` decides, so results are exactly its results
    (a zero tweak returns ``base``). Not thread-safe: reused buffers.
    """

    __slots__ = ("_pair", "_sum", "_tweak_point")

    def __init__(self) -> None:
        self._sum = ffi.new("secp256k1_pubkey *")
        self._tweak_point = ffi.new("secp256k1_pubkey *")
        self._pair = ffi.new("secp256k1_pubkey *[2]")
        self._pair[1] = self._tweak_point

    def add(self, base: Secp256k1Pubkey, tweak: bytes) -> Secp256k1Pubkey | None:
        """``base + tweak*G`` in a reused buffer, or None when the sum is invalid.

        ``tweak`` is 32 big-endian bytes; invalid means ``tweak >= n`` or infinity.
        """
        ctx, out, pair = SECP256K1_CTX, self._sum, self._pair
        pair[0] = base
        if lib.secp256k1_ec_pubkey_create(ctx, self._tweak_point, tweak) and (
            lib.secp256k1_ec_pubkey_combine(ctx, out, pair, 2)
        ):
            return out
        out[0] = base[0]
        return out if lib.secp256k1_ec_pubkey_tweak_add(ctx, out, tweak) else None


class ChildPoints:
    """CKDpub of many non-hardened children of one node: the address derivation fast path.

    ``point(i)`` is the point of ``node.child(i).public_key`` (tests compare both), but
    computed by calling libsecp256k1 through coincurve's cffi bindings: the parent is parsed
    once (a square root), each child is ``parent + I_L*G`` by :class:`PointTweaker`, and
    serialization writes into a reused buffer. At
    10,000+ addresses/s the coincurve route (a ``PublicKey`` object, a fresh cffi buffer
    and a copy per child, per ``add`` and per ``format``) cost more than the HMAC.

    Not thread-safe (the buffers are reused; cffi releases the GIL around each call): make
    one per batch. Pure: no I/O, no global state beyond coincurve's read-only context.
    """

    __slots__ = ("_add", "_chain_code", "_out", "_parent", "_parent_key", "_size")

    def __init__(self, node: ExtendedPublicKey) -> None:
        """Parse ``node``'s key once.

        Raises:
            ValidationError: the node's key is not a point (never for a decoded key).
        """
        if node.depth >= MAX_DEPTH:
            raise ValidationError("path deeper than 255 levels", field="path")
        self._chain_code = node.chain_code
        self._parent_key = node.public_key
        self._parent = ffi.new("secp256k1_pubkey *")
        if not lib.secp256k1_ec_pubkey_parse(SECP256K1_CTX, self._parent, node.public_key, 33):
            raise ValidationError("not a secp256k1 public key", field="public_key")
        self._add = PointTweaker().add
        self._out = ffi.new("unsigned char[65]")
        self._size = ffi.new("size_t *")

    def point(self, index: int) -> Secp256k1Pubkey:
        """The child point ``index`` (``0..2**31-1``, checked by the caller).

        Returns a reused buffer, overwritten by the next call.

        Raises:
            ValidationError: the one-in-2**127 index whose child is invalid (BIP32).
        """
        digest = hmac.digest(
            self._chain_code, self._parent_key + index.to_bytes(4, "big"), hashlib.sha512
        )
        child = self._add(self._parent, digest[:32])
        if child is None:  # BIP32: I_L >= n or the point at infinity
            raise ValidationError(
                f"index {index} yields an invalid key (BIP32); skip it", field="index"
            )
        return child

    def compressed(self, point: Secp256k1Pubkey) -> bytes:
        """33-byte SEC1 encoding of ``point``."""
        self._size[0] = 33
        lib.secp256k1_ec_pubkey_serialize(
            SECP256K1_CTX, self._out, self._size, point, lib.SECP256K1_EC_COMPRESSED
        )
        return ffi.buffer(self._out, 33)[:]  # type: ignore[no-any-return]

    def uncompressed(self, point: Secp256k1Pubkey) -> bytes:
        """65-byte SEC1 encoding of ``point`` (``04 || x || y``)."""
        self._size[0] = 65
        lib.secp256k1_ec_pubkey_serialize(
            SECP256K1_CTX, self._out, self._size, point, lib.SECP256K1_EC_UNCOMPRESSED
        )
        return ffi.buffer(self._out, 65)[:]  # type: ignore[no-any-return]


def master_from_seed(seed: bytes, network: Network = Network.MAINNET) -> ExtendedPrivateKey:
    """The BIP32 master node of ``seed`` (16..64 bytes, e.g. a BIP39 seed).

    Raises:
        ValidationError: a seed of the wrong length, or (probability 2**-127) one whose
            master key is invalid.
    """
    if not isinstance(seed, bytes) or not 16 <= len(seed) <= 64:
        raise ValidationError("a BIP32 seed is 16 to 64 bytes", field="seed")
    digest = hmac.digest(b"Bitcoin seed", seed, hashlib.sha512)
    secret = digest[:32]
    if not 0 < int.from_bytes(secret, "big") < CURVE_ORDER:
        raise ValidationError("this seed yields an invalid master key", field="seed")
    return ExtendedPrivateKey(network, 0, b"\0\0\0\0", 0, digest[32:], secret)


def _resolve_version(
    version: str | KeyVersion | None, network: Network, *, private: bool
) -> KeyVersion:
    if version is None:
        return default_key_version(network, private=private)
    chosen = version if isinstance(version, KeyVersion) else key_version(version)
    if chosen.private != private:
        kind = "private" if private else "public"
        raise ValidationError(f"{chosen.prefix} is not a {kind} key version", field="version")
    if chosen.test != network.is_test:
        raise ValidationError(
            f"{chosen.prefix} is not a version of {network.value}", field="version"
        )
    return chosen


@dataclass(frozen=True, slots=True)
class _Decoded:
    version: KeyVersion
    network: Network
    depth: int
    parent_fingerprint: bytes
    child_number: int
    chain_code: bytes
    key: bytes = field(repr=False)


def _decode(text: str, network: Network | None, field: str) -> _Decoded:
    """Parse and structurally validate a serialized extended key of either kind."""
    if not isinstance(text, str):
        raise ValidationError("extended key must be a string", field=field)
    raw = b58check_decode(text.strip(), field=field)
    if len(raw) != 78:
        raise ValidationError("extended key must be 78 bytes", field=field)
    version = KEY_VERSIONS_BY_INT.get(int.from_bytes(raw[:4], "big"))
    if version is None:
        raise ValidationError("unknown extended key version", field=field)
    resolved = _network_of(version, network, field)
    depth, fingerprint, child_number = raw[4], raw[5:9], int.from_bytes(raw[9:13], "big")
    if depth == 0 and (fingerprint != b"\0\0\0\0" or child_number != 0):
        raise ValidationError(
            "a depth-0 key must have a zero parent fingerprint and index", field=field
        )
    return _Decoded(version, resolved, depth, fingerprint, child_number, raw[13:45], raw[45:])


def _network_of(version: KeyVersion, network: Network | None, field: str) -> Network:
    if network is None:
        return Network.TESTNET if version.test else Network.MAINNET
    if version.test != network.is_test:
        family = "a test network" if version.test else "mainnet"
        raise ValidationError(
            f"extended key is for {family}, expected {network.value}", field=field
        )
    return network


def decode_extended_public_key(
    text: str, *, network: Network | None = None, field: str = "xpub"
) -> tuple[ExtendedPublicKey, KeyVersion]:
    """An extended public key and the version it was serialized with.

    ``network=None`` takes mainnet for x/y/z prefixes and testnet for t/u/v ones; pass
    signet or regtest explicitly to get those.

    Raises:
        ValidationError: wrong checksum, length, version or network; an invalid point; or a
            private key (refused without echoing it: the caller should not have sent it).
    """
    decoded = _decode(text, network, field)
    if decoded.version.private:
        raise ValidationError(
            f"a private extended key ({decoded.version.prefix}) was given where a public "
            "one is expected; it has not been kept. Export the account's public key instead",
            field=field,
        )
    if decoded.key[0] not in (2, 3):
        raise ValidationError("extended public key holds no compressed point", field=field)
    try:
        PublicKey(decoded.key)
    except ValueError:
        raise ValidationError(
            "extended public key is not a point on secp256k1", field=field
        ) from None
    key = ExtendedPublicKey(
        decoded.network,
        decoded.depth,
        decoded.parent_fingerprint,
        decoded.child_number,
        decoded.chain_code,
        decoded.key,
    )
    return key, decoded.version


def decode_extended_private_key(
    text: str, *, network: Network | None = None, field: str = "xprv"
) -> tuple[ExtendedPrivateKey, KeyVersion]:
    """An extended private key (signer side) and its version.

    Raises:
        ValidationError: wrong checksum, length, version or network; a public key; a key
            byte other than ``0x00`` before the scalar; a scalar outside ``1..n-1``.
    """
    decoded = _decode(text, network, field)
    if not decoded.version.private:
        raise ValidationError("expected a private extended key", field=field)
    scalar = int.from_bytes(decoded.key[1:], "big")
    if decoded.key[0] != 0 or not 0 < scalar < CURVE_ORDER:
        raise ValidationError("extended private key holds no valid scalar", field=field)
    key = ExtendedPrivateKey(
        decoded.network,
        decoded.depth,
        decoded.parent_fingerprint,
        decoded.child_number,
        decoded.chain_code,
        decoded.key[1:],
    )
    return key, decoded.version
