"""Bitcoin addresses: from a public key (P2PKH, P2SH-P2WPKH, P2WPKH, P2TR) and from text.

Public surface:
- :func:`address_from_public_key` / :func:`script_pubkey_from_public_key` (receive side);
- :func:`taproot_output_key` (BIP86 key-path tweak with an empty script tree) and
  :class:`TaprootTweak` (the same on raw libsecp256k1 points: the derivation fast path);
- :func:`parse_address` -> :class:`BitcoinAddress` (destination side: base58check P2PKH /
  P2SH, bech32 witness v0, bech32m witness v1+, checked against the expected network);
- :func:`address_from_script` (a watcher's scriptPubKey -> address text).

Invariants this module keeps:
- parsing returns the exact scriptPubKey the address commits to, or raises
  :class:`~dpgnode.errors.ValidationError` naming the field; nothing else escapes;
- an address of another network is refused even when its checksum is valid.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from coincurve import PublicKey
from coincurve._libsecp256k1 import ffi, lib  # type: ignore[import-not-found]

from dpgnode.domain.custody.bip32 import SECP256K1_CTX, PointTweaker, Secp256k1Pubkey
from dpgnode.domain.custody.encoding import (
    b58check_decode,
    b58check_encode,
    decode_segwit,
    encode_segwit,
    hash160,
)
from dpgnode.domain.custody.networks import AddressType, Network, network_params
from dpgnode.errors import ValidationError

_TAPTWEAK_TAG = hashlib.sha256(b"TapTweak").digest()
_TAPTWEAK_PREFIX = hashlib.sha256(_TAPTWEAK_TAG + _TAPTWEAK_TAG)
"""BIP340 tagged-hash state after the 64-byte tag prefix; copied for each key."""


class ScriptType(StrEnum):
    """The output type an address text reveals (P2SH hides whether it wraps P2WPKH)."""

    P2PKH = "p2pkh"
    P2SH = "p2sh"
    P2WPKH = "p2wpkh"
    P2WSH = "p2wsh"
    P2TR = "p2tr"
    WITNESS_UNKNOWN = "witness_unknown"
    """A future witness version (v2..v16, or v1 with a program other than 32 bytes)."""


@dataclass(frozen=True, slots=True)
class BitcoinAddress:
    """A validated Bitcoin destination."""

    text: str
    """The address as it should be displayed (bech32 lower-cased)."""
    network: Network
    script_type: ScriptType
    script_pubkey: bytes
    witness_version: int | None = None

    def __str__(self) -> str:
        return self.text


def taproot_output_key(public_key: bytes) -> bytes:
    """x-only output key of BIP86: ``lift_x(x(P)) + hash_TapTweak(x(P)) * G``.

    Accepts a 33-byte compressed key or a 32-byte x-only key.

    Raises:
        ValidationError: not a valid point.
    """
    internal = public_key[1:] if len(public_key) == 33 else public_key
    if not isinstance(internal, bytes) or len(internal) != 32:
        raise ValidationError("not a valid x-only public key", field="public_key")
    try:
        even = PublicKey(b"\x02" + internal)  # lift_x: the point with this x and an even y
    except ValueError:
        raise ValidationError("not a valid x-only public key", field="public_key") from None
    return taproot_output_key_of_point(even)


def taproot_output_key_of_point(point: PublicKey) -> bytes:
    """:func:`taproot_output_key` of an already parsed point (no square root to lift x).

    Raises:
        ValidationError: the (probability 2**-128) tweak outside ``1..n-1``.
    """
    return TaprootTweak()(point.public_key)


class TaprootTweak:
    """BIP86 output key of a raw libsecp256k1 point: the P2TR derivation fast path.

    P2TR is the one address type needing a second EC operation per address (the TapTweak
    ``Q = P' + hash_TapTweak(x(P)) * G`` with ``P'`` the even-y twin of ``P``). This calls
    libsecp256k1's extrakeys module through coincurve's cffi bindings:
    ``secp256k1_xonly_pubkey_from_pubkey`` gives ``x(P)`` and the parity of ``y`` without a
    square root, ``P'`` is ``P`` or ``secp256k1_ec_pubkey_negate(P)``, :class:`PointTweaker`
    adds the tweak, and the x-only keys are serialized into reused buffers; the
    tagged-hash prefix is hashed once per process. Going through coincurve ``PublicKey``
    objects instead (``format``, ``add``, ``format`` again, and ``n - t`` in Python for an
    odd y) cost about a third of the EC work itself.

    Not thread-safe (the buffers are reused; cffi releases the GIL around each call): make
    one per batch. Pure: no I/O.
    """

    __slots__ = ("_add", "_even", "_parity", "_x", "_xonly")

    def __init__(self) -> None:
        self._add = PointTweaker().add
        self._xonly = ffi.new("secp256k1_xonly_pubkey *")
        self._parity = ffi.new("int *")
        self._even = ffi.new("secp256k1_pubkey *")
        self._x = ffi.new("unsigned char[32]")

    def __call__(self, point: Secp256k1Pubkey) -> bytes:
        """The 32-byte x-only output key of internal key ``point`` (a ``secp256k1_pubkey *``).

        Raises:
            ValidationError: the (probability 2**-128) tweak outside ``1..n-1``.
        """
        ctx, xonly, x = SECP256K1_CTX, self._xonly, self._x
        lib.secp256k1_xonly_pubkey_from_pubkey(ctx, xonly, self._parity, point)
        lib.secp256k1_xonly_pubkey_serialize(ctx, x, xonly)
        hasher = _TAPTWEAK_PREFIX.copy()
        hasher.update(ffi.buffer(x))
        even = self._even
        even[0] = point[0]
        if self._parity[0]:
            lib.secp256k1_ec_pubkey_negate(ctx, even)
        output = self._add(even, hasher.digest())
        if output is None:  # BIP341 refuses a tweak >= n and the point at infinity
            raise ValidationError("taproot tweak out of range", field="public_key")
        lib.secp256k1_xonly_pubkey_from_pubkey(ctx, xonly, ffi.NULL, output)
        lib.secp256k1_xonly_pubkey_serialize(ctx, x, xonly)
        return ffi.buffer(x)[:]  # type: ignore[no-any-return]


def _witness_script(version: int, program: bytes) -> bytes:
    opcode = 0 if version == 0 else 0x50 + version
    return bytes([opcode, len(program)]) + program


def script_pubkey_from_public_key(public_key: bytes, address_type: AddressType) -> bytes:
    """The scriptPubKey paying to a 33-byte compressed key with ``address_type``.

    Raises:
        ValidationError: ``AddressType.EVM`` (not a Bitcoin output) or an invalid key.
    """
    _check_compressed(public_key)
    if address_type is AddressType.P2WPKH:
        return _witness_script(0, hash160(public_key))
    if address_type is AddressType.P2SH_P2WPKH:
        redeem = _witness_script(0, hash160(public_key))
        return b"\xa9\x14" + hash160(redeem) + b"\x87"
    if address_type is AddressType.P2PKH:
        return b"\x76\xa9\x14" + hash160(public_key) + b"\x88\xac"
    if address_type is AddressType.P2TR:
        return _witness_script(1, taproot_output_key(public_key))
    raise ValidationError("not a Bitcoin address type", field="address_type")


def address_from_public_key(public_key: bytes, address_type: AddressType, network: Network) -> str:
    """Address text paying to a 33-byte compressed key with ``address_type`` on ``network``.

    Raises:
        ValidationError: ``AddressType.EVM`` (use ``evm.evm_address_from_public_key``).
    """
    params = network_params(network)
    if address_type is AddressType.P2WPKH:
        return encode_segwit(params.hrp, 0, hash160(public_key))
    if address_type is AddressType.P2TR:
        return encode_segwit(params.hrp, 1, taproot_output_key(public_key))
    if address_type is AddressType.P2SH_P2WPKH:
        redeem = _witness_script(0, hash160(public_key))
        return b58check_encode(bytes([params.p2sh_version]) + hash160(redeem))
    if address_type is AddressType.P2PKH:
        return b58check_encode(bytes([params.p2pkh_version]) + hash160(public_key))
    raise ValidationError("not a Bitcoin address type", field="address_type")


def _check_compressed(public_key: bytes) -> None:
    if not isinstance(public_key, bytes) or len(public_key) != 33:
        raise ValidationError("expected a 33-byte compressed public key", field="public_key")
    try:
        PublicKey(public_key)
    except ValueError:
        raise ValidationError("not a secp256k1 public key", field="public_key") from None


def parse_address(text: str, network: Network, *, field: str = "address") -> BitcoinAddress:
    """Validate a Bitcoin destination for ``network`` and return what it pays to.

    Accepts base58check P2PKH / P2SH and bech32 (v0) / bech32m (v1+) segwit addresses
    (upper-case bech32 too, as QR codes carry it). Testnet and signet share every prefix, so
    either network accepts the other's addresses; regtest has its own bech32 hrp ``bcrt``
    but shares the base58 versions of testnet.

    Raises:
        ValidationError: malformed, bad checksum, wrong checksum variant for the witness
            version, or an address of another network.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("address is empty", field=field)
    text = text.strip()
    params = network_params(network)
    if len(text) > len(params.hrp) and text[: len(params.hrp) + 1].lower() == params.hrp + "1":
        return _parse_segwit(text, network, field)
    if text[:3].lower() in ("bc1", "tb1") or text[:5].lower() == "bcrt1":
        raise ValidationError(f"address is not for {network.value}", field=field)
    payload = b58check_decode(text, field=field)
    if len(payload) != 21:
        raise ValidationError("a base58 address carries 21 bytes", field=field)
    if payload[0] == params.p2pkh_version:
        script = b"\x76\xa9\x14" + payload[1:] + b"\x88\xac"
        return BitcoinAddress(text, network, ScriptType.P2PKH, script)
    if payload[0] == params.p2sh_version:
        script = b"\xa9\x14" + payload[1:] + b"\x87"
        return BitcoinAddress(text, network, ScriptType.P2SH, script)
    known = {0x00, 0x05, 0x6F, 0xC4}
    if payload[0] in known:
        raise ValidationError(f"address is not for {network.value}", field=field)
    raise ValidationError("unknown base58 address version", field=field)


def _parse_segwit(text: str, network: Network, field: str) -> BitcoinAddress:
    hrp, version, program = decode_segwit(text, field=field)
    if hrp != network_params(network).hrp:
        raise ValidationError(f"address is not for {network.value}", field=field)
    if version == 0:
        script_type = ScriptType.P2WPKH if len(program) == 20 else ScriptType.P2WSH
    elif version == 1 and len(program) == 32:
        script_type = ScriptType.P2TR
    else:
        script_type = ScriptType.WITNESS_UNKNOWN
    script = _witness_script(version, program)
    return BitcoinAddress(text.lower(), network, script_type, script, version)


def address_from_script(script_pubkey: bytes, network: Network) -> str | None:
    """Address text of a standard scriptPubKey, or ``None`` when it has no address form."""
    params = network_params(network)
    size = len(script_pubkey)
    if size == 25 and script_pubkey[:3] == b"\x76\xa9\x14" and script_pubkey[23:] == b"\x88\xac":
        return b58check_encode(bytes([params.p2pkh_version]) + script_pubkey[3:23])
    if size == 23 and script_pubkey[:2] == b"\xa9\x14" and script_pubkey[22] == 0x87:
        return b58check_encode(bytes([params.p2sh_version]) + script_pubkey[2:22])
    if 4 <= size <= 42 and script_pubkey[1] == size - 2:
        opcode = script_pubkey[0]
        version = 0 if opcode == 0 else opcode - 0x50 if 0x51 <= opcode <= 0x60 else None
        program = script_pubkey[2:]
        if version is None or (version == 0 and len(program) not in (20, 32)):
            return None
        return encode_segwit(params.hrp, version, program)
    return None
