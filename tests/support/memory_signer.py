"""An in-memory :class:`~dpgnode.ports.signer.Signer` for tests, backed by libsecp256k1.

Same contract as the PKCS#11 signer (low-S ECDSA with recovery ids, BIP340 Schnorr by the
BIP341-tweaked key, AES-256-GCM sealed seeds bound to their AAD), but the keys live in this
object's memory. Use it where a test is about what is signed, not about the HSM; the
integration tests of ``tests/integration/chains`` run the real HSM signer too when it exists.

It records every signing call in :attr:`MemorySigner.calls`, so a test can assert that a
refused request signed nothing.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from coincurve import PrivateKey
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dpgnode.domain.custody.bip32 import ExtendedPrivateKey, master_from_seed
from dpgnode.domain.custody.networks import KEY_VERSIONS_BY_INT, Network
from dpgnode.errors import ConflictError, IntegrityError, NotFoundError, ValidationError
from dpgnode.ports.signer import (
    DIGEST_SIZE,
    HdKeyRef,
    HotKeyInfo,
    HotKeyRef,
    KeyRef,
    SealedSeed,
    Signature,
    SignerStatus,
)

_TAPTWEAK = hashlib.sha256(b"TapTweak").digest()


def taproot_tweaked_secret(secret: bytes, merkle_root: bytes | None = None) -> PrivateKey:
    """BIP341's tweaked private key: negate for an odd-y internal key, then add the tweak."""
    key = PrivateKey(secret)
    public = key.public_key.format(compressed=True)
    if public[0] == 3:  # BIP340 keys are x-only with even y: use the negated scalar
        n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
        key = PrivateKey((n - int.from_bytes(secret, "big")).to_bytes(32, "big"))
    tweak = hashlib.sha256(_TAPTWEAK + _TAPTWEAK + public[1:] + (merkle_root or b"")).digest()
    tweaked: PrivateKey = key.add(tweak)
    return tweaked


@dataclass
class MemorySigner:
    """Hot keys by label and HD keys from sealed seeds, all in memory.

    Attributes:
        hot: Label -> 32-byte private key.
        calls: ``(method, ref)`` of every signing call, in order.
        kek_label: Label of the in-memory AES key that seals seeds.
    """

    hot: dict[str, bytes] = field(default_factory=dict, repr=False)  # private keys
    calls: list[tuple[str, KeyRef]] = field(default_factory=list)
    kek_label: str = "memory-kek-1"
    _kek: bytes = field(default_factory=lambda: AESGCM.generate_key(bit_length=256), repr=False)
    network: Network = Network.REGTEST

    def add_hot_key(self, label: str, secret: bytes) -> bytes:
        """Install a known private key under ``label`` (tests need fixed keys)."""
        if label in self.hot:
            raise ConflictError(f"hot key {label!r} exists")
        self.hot[label] = secret
        return PrivateKey(secret).public_key.format(compressed=True)

    def status(self) -> SignerStatus:
        return SignerStatus(
            module="memory",
            token_label="memory",
            token_serial="0",
            manufacturer="tests",
            model="MemorySigner",
            mechanisms=("ECDSA", "SCHNORR", "AES-GCM"),
            can_sign=True,
            kek_label=self.kek_label,
            kek_present=True,
            keks=(self.kek_label,),
            hot_keys=tuple(
                HotKeyInfo(label, PrivateKey(s).public_key.format(compressed=True))
                for label, s in sorted(self.hot.items())
            ),
        )

    def generate_hot_key(self, label: str) -> bytes:
        if not label or len(label) > 128:
            raise ValidationError("bad label", field="label")
        return self.add_hot_key(label, PrivateKey().secret)

    def public_key(self, ref: KeyRef) -> bytes:
        key: bytes = PrivateKey(self._secret(ref)).public_key.format(compressed=True)
        return key

    def sign_ecdsa(self, ref: KeyRef, digest32: bytes) -> Signature:
        _check_digest(digest32)
        self.calls.append(("sign_ecdsa", ref))
        raw = PrivateKey(self._secret(ref)).sign_recoverable(digest32, hasher=None)
        # libsecp256k1 always returns the low-S form and the recovery id that goes with it.
        return Signature(
            r=int.from_bytes(raw[:32], "big"),
            s=int.from_bytes(raw[32:64], "big"),
            recovery_id=raw[64],
        )

    def sign_schnorr(
        self, ref: HdKeyRef, digest32: bytes, *, merkle_root: bytes | None = None
    ) -> bytes:
        _check_digest(digest32)
        if merkle_root is not None and len(merkle_root) != 32:
            raise ValidationError("merkle root is 32 bytes", field="merkle_root")
        self.calls.append(("sign_schnorr", ref))
        tweaked = taproot_tweaked_secret(self._secret(ref), merkle_root)
        signature: bytes = tweaked.sign_schnorr(digest32, os.urandom(32))
        return signature

    def seal_seed(self, seed: bytes, *, aad: bytes) -> SealedSeed:
        if not 16 <= len(seed) <= 64:
            raise ValidationError("seed is 16..64 bytes", field="seed")
        nonce = os.urandom(12)
        return SealedSeed(self.kek_label, nonce, AESGCM(self._kek).encrypt(nonce, seed, aad), aad)

    def account_xpub(self, sealed: SealedSeed, path: str, *, version: bytes) -> str:
        known = KEY_VERSIONS_BY_INT.get(int.from_bytes(version, "big"))
        if len(version) != 4 or known is None or known.private:
            raise ValidationError("not an extended public key version", field="version")
        return self._node(sealed).derive_path(path).public().serialize(known)

    def rotate_kek(self, sealed: SealedSeed) -> SealedSeed:
        return self.seal_seed(self._open(sealed), aad=sealed.aad)

    def _open(self, sealed: SealedSeed) -> bytes:
        if sealed.kek_label != self.kek_label:
            raise NotFoundError(f"no KEK {sealed.kek_label!r}")
        try:
            seed: bytes = AESGCM(self._kek).decrypt(sealed.nonce, sealed.ciphertext, sealed.aad)
        except InvalidTag:
            raise IntegrityError("sealed seed does not open") from None
        return seed

    def _node(self, sealed: SealedSeed) -> ExtendedPrivateKey:
        return master_from_seed(self._open(sealed), self.network)

    def _secret(self, ref: KeyRef) -> bytes:
        if isinstance(ref, HotKeyRef):
            try:
                return self.hot[ref.label]
            except KeyError:
                raise NotFoundError(f"no hot key {ref.label!r}") from None
        return self._node(ref.sealed).derive_path(ref.path).secret


def _check_digest(digest32: bytes) -> None:
    if not isinstance(digest32, bytes) or len(digest32) != DIGEST_SIZE:
        raise ValidationError("digest must be 32 bytes", field="digest")
