"""A ``Signer`` that counts every call by operation and outcome, then delegates.

The signer role's wiring wraps its HSM signer in this, so ``dpg_signer_calls_total`` shows
how many signatures, seals and key reads the HSM served and which failed how (``unavailable``
when the token cannot be reached, ``integrity_violation`` when a sealed seed does not open).
Outcomes are error *codes*, never messages: nothing about a key or a digest reaches a label.
The figure that counts every process, the CLI's signing commands included, is the custody
audit log's (``dpg_custody_signing_total``, :mod:`dpgnode.services.observability`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from dpgnode.errors import DpgError
from dpgnode.ports.metrics import Metrics
from dpgnode.ports.signer import HdKeyRef, KeyRef, SealedSeed, Signature, Signer, SignerStatus

T = TypeVar("T")


class MeteredSigner:
    """Counts each call of ``inner`` into ``metrics`` (see the module docstring).

    Args:
        inner: the signer doing the work.
        metrics: where ``record_signer_call(operation, outcome)`` goes.
    """

    def __init__(self, inner: Signer, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        try:
            result = call()
        except DpgError as exc:
            self._metrics.record_signer_call(operation, exc.code)
            raise
        except Exception:
            self._metrics.record_signer_call(operation, "internal")
            raise
        self._metrics.record_signer_call(operation, "ok")
        return result

    def status(self) -> SignerStatus:
        """The inner signer's status, counted as ``status``."""
        return self._call("status", self._inner.status)

    def generate_hot_key(self, label: str) -> bytes:
        """Generate a hot key in the inner signer, counted as ``generate_hot_key``."""
        return self._call("generate_hot_key", lambda: self._inner.generate_hot_key(label))

    def public_key(self, ref: KeyRef) -> bytes:
        """A public key from the inner signer, counted as ``public_key``."""
        return self._call("public_key", lambda: self._inner.public_key(ref))

    def sign_ecdsa(self, ref: KeyRef, digest32: bytes) -> Signature:
        """An ECDSA signature from the inner signer, counted as ``sign_ecdsa``."""
        return self._call("sign_ecdsa", lambda: self._inner.sign_ecdsa(ref, digest32))

    def sign_schnorr(
        self, ref: HdKeyRef, digest32: bytes, *, merkle_root: bytes | None = None
    ) -> bytes:
        """A BIP340 signature from the inner signer, counted as ``sign_schnorr``."""
        return self._call(
            "sign_schnorr",
            lambda: self._inner.sign_schnorr(ref, digest32, merkle_root=merkle_root),
        )

    def seal_seed(self, seed: bytes, *, aad: bytes) -> SealedSeed:
        """Seal a seed in the inner signer, counted as ``seal_seed``."""
        return self._call("seal_seed", lambda: self._inner.seal_seed(seed, aad=aad))

    def account_xpub(self, sealed: SealedSeed, path: str, *, version: bytes) -> str:
        """An account xpub from the inner signer, counted as ``account_xpub``."""
        return self._call(
            "account_xpub", lambda: self._inner.account_xpub(sealed, path, version=version)
        )

    def rotate_kek(self, sealed: SealedSeed) -> SealedSeed:
        """Re-seal under the active KEK in the inner signer, counted as ``rotate_kek``."""
        return self._call("rotate_kek", lambda: self._inner.rotate_kek(sealed))
