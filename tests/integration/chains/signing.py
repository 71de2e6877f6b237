"""Helpers shared by the chain tests (a module of its own, so tests never import conftest)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dpgnode.ports.signer import (
    HdKeyRef,
    KeyRef,
    SealedSeed,
    Signature,
    Signer,
    SignerStatus,
)

BURN = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
"""A regtest address outside every wallet: blocks mined to it cost the funder no wallet work."""


@dataclass
class CountingSigner:
    """Delegates to a real signer and records every signing call (never the digests' keys)."""

    inner: Signer
    calls: list[str] = field(default_factory=list)

    def public_key(self, ref: KeyRef) -> bytes:
        return self.inner.public_key(ref)

    def sign_ecdsa(self, ref: KeyRef, digest32: bytes) -> Signature:
        self.calls.append("ecdsa")
        return self.inner.sign_ecdsa(ref, digest32)

    def sign_schnorr(
        self, ref: HdKeyRef, digest32: bytes, *, merkle_root: bytes | None = None
    ) -> bytes:
        self.calls.append("schnorr")
        return self.inner.sign_schnorr(ref, digest32, merkle_root=merkle_root)

    def generate_hot_key(self, label: str) -> bytes:
        return self.inner.generate_hot_key(label)

    def seal_seed(self, seed: bytes, *, aad: bytes) -> SealedSeed:
        return self.inner.seal_seed(seed, aad=aad)

    def status(self) -> SignerStatus:
        return self.inner.status()

    def account_xpub(self, sealed: SealedSeed, path: str, *, version: bytes) -> str:
        return self.inner.account_xpub(sealed, path, version=version)

    def rotate_kek(self, sealed: SealedSeed) -> SealedSeed:
        return self.inner.rotate_kek(sealed)
