"""``Pkcs11Signer``: the ``Signer`` port over any PKCS#11 module.

SoftHSM2 is the development default; a YubiHSM 2, a Nitrokey HSM or a cloud HSM works the
same through its vendor's module, since only standard mechanisms are used: ``EC_KEY_PAIR_GEN``
and raw ``ECDSA`` over secp256k1 for hot keys, ``AES_KEY_GEN`` and ``AES_GCM`` for the KEK.

Invariants: hot-key private halves and KEKs never leave the token (checked on creation, see
:mod:`.objects`); an HD seed is opened only inside :meth:`Pkcs11Signer._with_seed`, used for
one derivation and wiped before the call returns (limits: :mod:`.wipe`); every signature is
low-S with a verified recovery id, and every Schnorr signature is verified before it is
returned. All calls into the module hold :data:`.runtime.LOCK`; the work done outside the HSM
(recovery ids, HD derivation, coincurve signing) does not.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TypeVar

import pkcs11
import pkcs11.exceptions as p11
from coincurve import PrivateKey, PublicKeyXOnly
from pkcs11 import Mechanism
from pkcs11.mechanisms import GCMParams
from pkcs11.types import SignMixin

from dpgnode.errors import IntegrityError, UnavailableError, ValidationError
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

from . import backup_key, hd, objects
from .errors import STALE_SESSION, map_pkcs11_errors
from .pin import PinSource
from .runtime import LOCK, RUNTIME, Runtime, TokenLocation
from .secp256k1 import finish_signature, sign_recoverable, taproot_tweaked_key
from .wipe import wipe

T = TypeVar("T")

GCM_NONCE_BYTES = 12
GCM_TAG_BYTES = 16
SEED_MIN, SEED_MAX = 16, 64
MAX_AAD_BYTES = 1024
_UNSEAL_FAILURES = (
    p11.GeneralError,
    p11.EncryptedDataInvalid,
    p11.EncryptedDataLenRange,
    p11.FunctionFailed,
    p11.DataInvalid,
    p11.DataLenRange,
)


def _check_digest(digest32: bytes, field: str = "digest") -> None:
    if not isinstance(digest32, bytes) or len(digest32) != DIGEST_SIZE:
        raise ValidationError(f"{field} must be exactly 32 bytes", field=field)


def _hot_label(ref: object) -> str:
    if not isinstance(ref, HotKeyRef):
        raise ValidationError("expected a HotKeyRef or an HdKeyRef", field="ref")
    return ref.label


class Pkcs11Signer:
    """Signs with keys held in (or sealed by) one PKCS#11 token.

    Args:
        location: The module, the token's label and SoftHSM2's configuration if any.
        pin: Where the user PIN is read from when the signer logs in.
        kek_label: Label of the active key-encryption key (new seals use it).
        runtime: The process's PKCS#11 state (tests never need another).
    """

    def __init__(
        self,
        location: TokenLocation,
        pin: PinSource,
        *,
        kek_label: str,
        runtime: Runtime = RUNTIME,
    ) -> None:
        self._location = location
        self._pin = pin
        self._kek_label = objects.check_label(kek_label)
        self._runtime = runtime
        self._session: pkcs11.Session | None = None
        self._generation = -1
        self._hot: dict[str, tuple[SignMixin, bytes]] = {}
        self._keks: dict[str, objects.Kek] = {}
        self._closed = False
        with LOCK:
            runtime.attach(location)

    @property
    def location(self) -> TokenLocation:
        return self._location

    @property
    def kek_label(self) -> str:
        return self._kek_label

    def close(self) -> None:
        """Release the shared session (the last signer on the token logs out)."""
        with LOCK:
            if self._closed:
                return
            self._closed = True
            self._forget_session()
            self._runtime.detach(self._location)

    def __enter__(self) -> Pkcs11Signer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the Signer port ---------------------------------------------------------------

    def status(self) -> SignerStatus:
        def read(session: pkcs11.Session) -> SignerStatus:
            token = session.token
            keks = objects.list_keks(session)
            return SignerStatus(
                module=str(self._location.module),
                token_label=token.label,
                token_serial=token.serial.decode(errors="replace").strip(),
                manufacturer=token.manufacturer_id,
                model=token.model,
                mechanisms=tuple(objects.mechanism_names(session)),
                can_sign=objects.has_required_mechanisms(session),
                kek_label=self._kek_label,
                kek_present=self._kek_label in keks,
                keks=tuple(keks),
                hot_keys=tuple(
                    HotKeyInfo(label, public) for label, public in objects.list_hot_keys(session)
                ),
            )

        return self._run(read)

    def generate_hot_key(self, label: str) -> bytes:
        objects.check_label(label)

        def generate(session: pkcs11.Session) -> bytes:
            private, public = objects.generate_secp256k1(session, label)
            self._hot[label] = (private, public)
            return public

        return self._run(generate)

    def public_key(self, ref: KeyRef) -> bytes:
        if isinstance(ref, HdKeyRef):
            return self._with_child(ref, lambda key: key.public_key.format(compressed=True))
        label = _hot_label(ref)
        return self._run(lambda session: self._hot_key(session, label))[1]

    def sign_ecdsa(self, ref: KeyRef, digest32: bytes) -> Signature:
        _check_digest(digest32)
        if isinstance(ref, HdKeyRef):
            return self._with_child(ref, lambda key: sign_recoverable(key, digest32))

        label = _hot_label(ref)

        def sign(session: pkcs11.Session) -> tuple[bytes, bytes]:
            private, public = self._hot_key(session, label)
            return private.sign(digest32, mechanism=Mechanism.ECDSA), public

        raw, public = self._run(sign)
        return finish_signature(raw, digest32, public)

    def sign_schnorr(
        self, ref: HdKeyRef, digest32: bytes, *, merkle_root: bytes | None = None
    ) -> bytes:
        _check_digest(digest32)
        if merkle_root is not None:
            _check_digest(merkle_root, "merkle_root")
        if not isinstance(ref, HdKeyRef):
            # PKCS#11 has no BIP340 mechanism, so an HSM-held key cannot make one.
            raise ValidationError(
                "Schnorr (P2TR) signatures need an HD key; hot keys sign ECDSA only", field="ref"
            )

        def sign(key: PrivateKey) -> bytes:
            tweaked = taproot_tweaked_key(key, merkle_root)
            try:
                signature = tweaked.sign_schnorr(digest32, secrets.token_bytes(32))
                output_key = PublicKeyXOnly(tweaked.public_key.format(compressed=True)[1:])
                if not output_key.verify(signature, digest32):
                    raise IntegrityError("a Schnorr signature failed its own verification")
                return signature
            finally:
                wipe(tweaked.secret)  # on the refusal path too

        return self._with_child(ref, sign)

    def seal_seed(self, seed: bytes, *, aad: bytes) -> SealedSeed:
        if not isinstance(seed, bytes | bytearray) or not SEED_MIN <= len(seed) <= SEED_MAX:
            raise ValidationError("a seed is 16 to 64 bytes", field="seed")
        if not isinstance(aad, bytes) or len(aad) > MAX_AAD_BYTES:
            raise ValidationError("aad must be at most 1024 bytes", field="aad")
        nonce = secrets.token_bytes(GCM_NONCE_BYTES)
        label = self._kek_label
        # One bytes view of the seed for the whole call: bytes(b) is b itself, so the caller's
        # object is never wiped here; a bytearray's copy is ours, and is wiped below.
        plain = bytes(seed)
        copied = plain is not seed

        def seal(session: pkcs11.Session) -> bytes:
            kek = self._kek(session, label)
            params = GCMParams(nonce, aad or None)
            return objects.gcm_encrypt(kek, plain, params)

        opened = b""
        try:
            sealed = SealedSeed(label, nonce, self._run(seal), aad)
            # Open it once before anyone relies on it: a seal that does not open loses a wallet.
            opened = self._open(sealed)
            if opened != plain:
                raise IntegrityError("the HSM's sealed seed does not open to the same seed")
            return sealed
        finally:
            wipe(opened, plain if copied else None)

    def account_xpub(self, sealed: SealedSeed, path: str, *, version: bytes) -> str:
        indices = hd.parse_hd_path(path)
        chosen = hd.key_version(version)
        return self._with_seed(sealed, lambda seed: hd.account_xpub(seed, indices, chosen))

    def rotate_kek(self, sealed: SealedSeed) -> SealedSeed:
        return self._with_seed(sealed, lambda seed: self.seal_seed(seed, aad=sealed.aad))

    # -- administration (dpg hsm; not part of the port) ----------------------------------

    def ensure_kek(self) -> bool:
        """Create the active KEK if the token lacks it; ``True`` when it was created."""

        def ensure(session: pkcs11.Session) -> bool:
            if self._kek_label in objects.list_keks(session):
                return False
            self._keks[self._kek_label] = objects.generate_kek(session, self._kek_label)
            return True

        return self._run(ensure)

    def ensure_backup_key(self, label: str) -> tuple[bool, bytes]:
        """Create the backup key pair if missing; ``(created, public key DER)``."""
        objects.check_label(label)

        def ensure(session: pkcs11.Session) -> tuple[bool, bytes]:
            if backup_key.exists(session, label):
                return False, backup_key.public_der(session, label)
            return True, backup_key.generate(session, label)

        return self._run(ensure)

    def backup_public_key(self, label: str) -> bytes:
        """The backup key pair's public half (DER); ``NotFoundError`` if the token lacks it."""
        objects.check_label(label)
        return self._run(lambda session: backup_key.public_der(session, label))

    def backup_agree(self, label: str, peer_point: bytes) -> bytes:
        """ECDH of the backup key with an ephemeral public point, inside the token."""
        objects.check_label(label)
        return self._run(lambda session: backup_key.agree(session, label, peer_point))

    def key_protection(self, label: str) -> dict[str, bool]:
        """CKA_SENSITIVE, CKA_EXTRACTABLE, ... of a hot key, a KEK or the backup key."""
        objects.check_label(label)

        def read(session: pkcs11.Session) -> dict[str, bool]:
            if label in objects.list_keks(session):
                return objects.protection(self._kek(session, label))
            if backup_key.is_backup_key(session, label):
                return objects.protection(backup_key.private_key(session, label))
            return objects.protection(self._hot_key(session, label)[0])

        return self._run(read)

    # -- internals ------------------------------------------------------------------------

    def _run(self, operation: Callable[[pkcs11.Session], T]) -> T:
        """Run ``operation`` on the logged-in session, reconnecting once if it went stale."""
        with LOCK, map_pkcs11_errors(self._location.describe(), self._pin.describe()):
            if self._closed:
                raise UnavailableError("this signer has been closed")
            session = self._current_session()
            try:
                return operation(session)
            except STALE_SESSION:
                self._runtime.invalidate(self._location, session)
                self._forget_session()
                return operation(self._current_session())

    def _current_session(self) -> pkcs11.Session:
        generation = self._runtime.generation(self._location)
        if self._session is None or generation != self._generation:
            self._forget_session()
            self._session, self._generation = self._runtime.login(self._location, self._pin)
        return self._session

    def _forget_session(self) -> None:
        self._session = None
        self._hot.clear()
        self._keks.clear()

    def _hot_key(self, session: pkcs11.Session, label: str) -> tuple[SignMixin, bytes]:
        found = self._hot.get(label)
        if found is None:
            found = objects.find_hot_key(session, label)
            self._hot[label] = found
        return found

    def _kek(self, session: pkcs11.Session, label: str) -> objects.Kek:
        found = self._keks.get(label)
        if found is None:
            found = objects.find_kek(session, label)
            self._keks[label] = found
        return found

    def _open(self, sealed: SealedSeed) -> bytes:
        """The seed inside ``sealed``; the caller wipes it."""
        if not isinstance(sealed, SealedSeed):
            raise ValidationError("not a sealed seed", field="sealed")
        size = len(sealed.ciphertext) - GCM_TAG_BYTES
        if len(sealed.nonce) != GCM_NONCE_BYTES or not SEED_MIN <= size <= SEED_MAX:
            raise IntegrityError("the sealed seed is malformed (tampered or truncated)")

        def unseal(session: pkcs11.Session) -> bytes:
            kek = self._kek(session, sealed.kek_label)
            params = GCMParams(sealed.nonce, sealed.aad or None)
            try:
                opened = objects.gcm_decrypt(kek, sealed.ciphertext, params)
            except _UNSEAL_FAILURES as exc:
                # GCM cannot tell a flipped bit from a wrong AAD or a wrong key: all tampering.
                raise IntegrityError(
                    "the sealed seed does not open: tampered ciphertext, wrong AAD or wrong KEK"
                ) from exc
            return opened

        return self._run(unseal)

    def _with_seed(self, sealed: SealedSeed, use: Callable[[bytes], T]) -> T:
        seed = self._open(sealed)
        try:
            return use(seed)
        finally:
            wipe(seed)

    def _with_child(self, ref: HdKeyRef, use: Callable[[PrivateKey], T]) -> T:
        if not isinstance(ref, HdKeyRef):
            raise ValidationError("expected a HotKeyRef or an HdKeyRef", field="ref")
        indices = hd.parse_hd_path(ref.path)  # refuse a bad path before opening anything
        return self._with_seed(ref.sealed, lambda seed: hd.with_child_key(seed, indices, use))
