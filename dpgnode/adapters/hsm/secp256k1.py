"""secp256k1 around the HSM: public points, low-S, recovery ids, the BIP341 tweak.

The HSM's ``CKM_ECDSA`` returns raw ``r || s`` with a random nonce and, about half the
time, a high ``s``: Bitcoin nodes refuse those ("Non-canonical signature") and Ethereum
requires low S (EIP-2). :func:`finish_signature` normalises ``s`` to ``n - s`` and finds the
recovery id by recovering the public key with libsecp256k1 (coincurve) and comparing it with
the key's own, which also proves the HSM signed with the key we asked for.
"""

from __future__ import annotations

from coincurve import PrivateKey, PublicKey

from dpgnode.domain.custody.btc_tx import tagged_hash
from dpgnode.errors import IntegrityError
from dpgnode.ports.signer import SECP256K1_HALF_N, SECP256K1_N, Signature

from .wipe import wipe

_UNCOMPRESSED = 65
_DER_OCTET_STRING = 0x04


def compressed_public_key(ec_point: bytes) -> bytes:
    """The 33-byte compressed key from a PKCS#11 ``CKA_EC_POINT``.

    PKCS#11 v2.40 says ``CKA_EC_POINT`` is a DER ``OCTET STRING`` holding the X9.62 point;
    some modules return the bare point. Both are accepted; anything else is an integrity
    failure (the token returned something that is not a secp256k1 point).
    """
    point = ec_point
    if len(point) == _UNCOMPRESSED + 2 and point[0] == _DER_OCTET_STRING:
        if point[1] != _UNCOMPRESSED:
            raise IntegrityError("the HSM returned a malformed EC point")
        point = point[2:]
    try:
        return PublicKey(point).format(compressed=True)
    except ValueError as exc:
        raise IntegrityError("the HSM returned a public key that is not on secp256k1") from exc


def finish_signature(raw: bytes, digest32: bytes, public_key: bytes) -> Signature:
    """Low-S :class:`Signature` with its recovery id from the HSM's raw ``r || s``.

    Raises:
        IntegrityError: The signature is malformed or recovers to another key (the HSM did
            not sign ``digest32`` with ``public_key``).
    """
    if len(raw) != 64:
        raise IntegrityError(f"the HSM returned a {len(raw)}-byte ECDSA signature, not 64")
    r = int.from_bytes(raw[:32], "big")
    s = int.from_bytes(raw[32:], "big")
    if not (1 <= r < SECP256K1_N and 1 <= s < SECP256K1_N):
        raise IntegrityError("the HSM returned an ECDSA signature out of range")
    if s > SECP256K1_HALF_N:
        s = SECP256K1_N - s
    compact = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    # 0 and 1 cover every signature but those whose nonce point has x >= n (chance ~2^-128).
    for recovery_id in range(4):
        try:
            recovered = PublicKey.from_signature_and_message(
                compact + bytes([recovery_id]), digest32, hasher=None
            )
        except ValueError:
            continue
        if recovered.format(compressed=True) == public_key:
            return Signature(r, s, recovery_id)
    raise IntegrityError("the HSM's signature does not verify against the key's public key")


def sign_recoverable(private_key: PrivateKey, digest32: bytes) -> Signature:
    """ECDSA by libsecp256k1 (RFC 6979 nonce, low S by construction) with its recovery id."""
    signed = private_key.sign_recoverable(digest32, hasher=None)
    r = int.from_bytes(signed[:32], "big")
    s = int.from_bytes(signed[32:64], "big")
    return Signature(r, s, signed[64])


def taproot_tweaked_key(internal: PrivateKey, merkle_root: bytes | None) -> PrivateKey:
    """BIP341 ``taproot_tweak_seckey``: the key that signs for the P2TR output key.

    The internal key is negated when its point has an odd y (x-only keys stand for the even
    point), then ``t = H_TapTweak(x(P) || merkle_root)`` is added; ``merkle_root`` ``None``
    means no script tree (BIP86), which hashes ``x(P)`` alone.
    """
    point = internal.public_key.format(compressed=True)
    tweak = tagged_hash("TapTweak", point[1:] + (merkle_root or b""))
    if int.from_bytes(tweak, "big") >= SECP256K1_N:
        raise IntegrityError("taproot tweak out of range")  # BIP341: fail, chance ~2^-128
    if point[0] == 0x02:
        even: PrivateKey = internal.add(tweak)
        return even
    negated = PrivateKey.from_int(SECP256K1_N - internal.to_int())
    try:
        odd: PrivateKey = negated.add(tweak)
        return odd
    finally:
        wipe(negated.secret)
