"""Key slots: the backup's random data key, wrapped under a key the operator holds.

Two kinds, both wrapping the 32-byte data key with AES-256-GCM under a key-encryption key
(KEK) that is never stored:

- ``passphrase``: KEK = scrypt(passphrase, 16-byte salt, N=2^17, r=8, p=1) (128 MiB, about
  half a second: each guess costs an attacker as much). Read back, the parameters are
  bounded so a crafted header cannot make a reader allocate gigabytes.
- ``hsm``: ECDH-ES on P-256. The node holds only the *public* key of a key pair whose
  private half never leaves the HSM; each backup makes an ephemeral key pair, and KEK =
  HKDF-SHA256(ECDH(ephemeral, recipient), info = label || ephemeral || recipient). So the
  node, which may not load the HSM (RELIABILITY.md R22), can still write HSM-keyed backups
  on its schedule; only a restore needs the HSM, which recomputes the same ECDH inside the
  token (:class:`EcdhOpener` gets that as a function from ``dpgnode.signer``).

A key that does not open a slot and a tampered slot look alike to GCM; both are refused
with ``ValidationError`` naming the key source.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from dpgnode.domain.backup import KeySource
from dpgnode.errors import ConfigError, ValidationError
from dpgnode.settings import Settings

from .container import KEY_BYTES

SCRYPT_LOG_N = 17
_SCRYPT_LIMITS = {"logN": (14, 20), "r": (1, 16), "p": (1, 4)}
_SLOT_AAD = b"dpg-backup/v1/key-slot"
_ECDH_INFO = b"dpg-backup/v1/ecdh-p256"
_NONCE_BYTES = 12
_SALT_BYTES = 16
MIN_PASSPHRASE_CHARS = 12

Agreement = Callable[[str, bytes], bytes]
"""``(key_label, ephemeral_point) -> ECDH shared secret``, computed inside the HSM."""


class KeySealer(Protocol):
    """Wraps a new backup's data key into a key slot (the header's ``key`` object)."""

    source: KeySource

    def seal(self, data_key: bytes) -> dict[str, Any]:
        """The key slot holding ``data_key``."""
        ...


class KeyOpener(Protocol):
    """Recovers the data key from a key slot."""

    def open(self, slot: Mapping[str, Any]) -> bytes:
        """The data key (``ValidationError`` when this key does not open the slot)."""
        ...


def new_data_key() -> bytes:
    """A fresh random data key; never reuse one (chunk nonces are counters)."""
    return secrets.token_bytes(KEY_BYTES)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(slot: Mapping[str, Any], name: str) -> bytes:
    try:
        return base64.b64decode(str(slot[name]), validate=True)
    except (KeyError, ValueError) as exc:
        raise ValidationError(f"backup key slot: bad {name}", field="backup") from exc


def _wrap(kek: bytes, data_key: bytes) -> dict[str, str]:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return {"nonce": _b64(nonce), "wrapped": _b64(AESGCM(kek).encrypt(nonce, data_key, _SLOT_AAD))}


def _unwrap(kek: bytes, slot: Mapping[str, Any], refusal: str, field: str) -> bytes:
    try:
        key = AESGCM(kek).decrypt(_unb64(slot, "nonce"), _unb64(slot, "wrapped"), _SLOT_AAD)
    except InvalidTag as exc:
        raise ValidationError(refusal, field=field) from exc
    if len(key) != KEY_BYTES:
        raise ValidationError("backup key slot holds a key of the wrong size", field="backup")
    return key


def _require_kind(slot: Mapping[str, Any], kind: KeySource) -> None:
    if slot.get("kind") != str(kind):
        raise ValidationError(
            f"this backup is keyed by {slot.get('kind')!r}, not {kind}: "
            f"open it with its own key source (backup.key_source)", field="backup.key_source",
        )


class PassphraseKey:
    """Seals and opens key slots with a passphrase (scrypt-derived KEK)."""

    source = KeySource.PASSPHRASE

    def __init__(self, passphrase: str, *, log_n: int = SCRYPT_LOG_N) -> None:
        if len(passphrase) < MIN_PASSPHRASE_CHARS:
            raise ConfigError(
                f"a backup passphrase needs at least {MIN_PASSPHRASE_CHARS} characters"
            )
        self._secret = passphrase.encode()
        self._log_n = log_n

    def __repr__(self) -> str:
        return "PassphraseKey(***)"

    def _kek(self, salt: bytes, log_n: int, r: int, p: int) -> bytes:
        return Scrypt(salt=salt, length=KEY_BYTES, n=1 << log_n, r=r, p=p).derive(self._secret)

    def seal(self, data_key: bytes) -> dict[str, Any]:
        salt = secrets.token_bytes(_SALT_BYTES)
        kek = self._kek(salt, self._log_n, 8, 1)
        return {
            "kind": str(self.source), "kdf": "scrypt", "logN": self._log_n, "r": 8, "p": 1,
            "salt": _b64(salt), **_wrap(kek, data_key),
        }

    def open(self, slot: Mapping[str, Any]) -> bytes:
        _require_kind(slot, self.source)
        if slot.get("kdf") != "scrypt":
            raise ValidationError(f"unknown key derivation {slot.get('kdf')!r}", field="backup")
        params: dict[str, int] = {}
        for name, (low, high) in _SCRYPT_LIMITS.items():
            value = slot.get(name)
            if not isinstance(value, int) or not low <= value <= high:
                raise ValidationError(f"backup key slot: {name} out of range", field="backup")
            params[name] = value
        kek = self._kek(_unb64(slot, "salt"), params["logN"], params["r"], params["p"])
        return _unwrap(
            kek, slot, "the passphrase does not open this backup (wrong passphrase, or the "
            "backup's key slot was altered)", "passphrase",
        )


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _ecdh_kek(shared: bytes, label: str, ephemeral: bytes, recipient: bytes) -> bytes:
    info = _ECDH_INFO + b"|" + label.encode() + b"|" + ephemeral + recipient
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(shared)


def load_public_key(data: bytes) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from PEM or DER (``ConfigError`` for anything else)."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
        else:
            key = serialization.load_der_public_key(data)
    except ValueError as exc:
        raise ConfigError("the backup public key is not a PEM or DER public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ConfigError("the backup public key must be a P-256 (secp256r1) key")
    return key


def public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    """The key as a PEM ``PUBLIC KEY`` block."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(key: ec.EllipticCurvePublicKey) -> str:
    """First 16 hex digits of SHA-256 over the key's DER form, to compare keys by eye."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def public_key_path(settings: Settings) -> Path:
    """Where the HSM backup key's public half is kept (``backup.hsm_public_key``)."""
    return settings.backup.hsm_public_key or settings.data_dir / "backup-key.pem"


def passphrase_source(settings: Settings) -> PassphraseSource:
    """The configured passphrase file, else the configured variable."""
    return PassphraseSource(settings.backup.passphrase_file, settings.backup.passphrase_env)


def sealer_from_settings(settings: Settings, passphrase: str | None = None) -> KeySealer:
    """What new backups are keyed with, per ``backup.key_source``.

    ``passphrase`` (from a prompt) wins over the configured source.

    Raises:
        ConfigError: no passphrase, or no public key file for ``hsm``; the message says how
            to provide one.
    """
    if settings.backup.key_source == str(KeySource.HSM):
        path = public_key_path(settings)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"no backup public key at {path}: run `dpg backup key create` "
                "(it keeps the private half in the HSM)",
                details={"field": "backup.hsm_public_key"},
            ) from exc
        return EcdhRecipient(load_public_key(data), settings.backup.hsm_key_label)
    if passphrase is None:
        passphrase = passphrase_source(settings).read()
    return PassphraseKey(passphrase)


class EcdhRecipient:
    """Seals key slots to an HSM-held P-256 key, knowing only its public half."""

    source = KeySource.HSM

    def __init__(self, public_key: ec.EllipticCurvePublicKey, label: str) -> None:
        self._public = public_key
        self._label = label

    def seal(self, data_key: bytes) -> dict[str, Any]:
        ephemeral = ec.generate_private_key(ec.SECP256R1())
        shared = ephemeral.exchange(ec.ECDH(), self._public)
        eph, rec = _point(ephemeral.public_key()), _point(self._public)
        kek = _ecdh_kek(shared, self._label, eph, rec)
        return {
            "kind": str(self.source), "curve": "P-256", "keyLabel": self._label,
            "fingerprint": fingerprint(self._public), "ephemeral": _b64(eph),
            "recipient": _b64(rec), **_wrap(kek, data_key),
        }


class EcdhOpener:
    """Opens ``hsm`` key slots; ``agree`` runs the ECDH inside the HSM."""

    def __init__(self, agree: Agreement) -> None:
        self._agree = agree

    def open(self, slot: Mapping[str, Any]) -> bytes:
        _require_kind(slot, KeySource.HSM)
        label = str(slot.get("keyLabel", ""))
        eph, rec = _unb64(slot, "ephemeral"), _unb64(slot, "recipient")
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), eph)
        except ValueError as exc:
            raise ValidationError("backup key slot: bad ephemeral key", field="backup") from exc
        kek = _ecdh_kek(self._agree(label, eph), label, eph, rec)
        return _unwrap(
            kek, slot, f"the HSM key '{label}' does not open this backup (another key of that "
            "label, or the backup's key slot was altered)", "backup.hsm_key_label",
        )


@dataclass(frozen=True, slots=True)
class KnownKey:
    """The data key itself: reading back a backup this process just wrote."""

    data_key: bytes

    def open(self, slot: Mapping[str, Any]) -> bytes:
        return self.data_key

    def __repr__(self) -> str:
        return "KnownKey(***)"


@dataclass(frozen=True, slots=True)
class PassphraseSource:
    """Where a passphrase comes from: a file readable by its owner only, or a variable."""

    file: Path | None
    env_var: str

    def describe(self) -> str:
        """Where the passphrase comes from (never the passphrase)."""
        return f"file {self.file}" if self.file is not None else f"variable {self.env_var}"

    def available(self) -> bool:
        """Whether a passphrase is configured at all (it may still be unreadable)."""
        return self.file is not None or bool(os.environ.get(self.env_var))

    def read(self) -> str:
        """The passphrase (one trailing newline removed).

        Raises:
            ConfigError: nothing configured, the file is missing, unreadable or readable by
                group or others, or the passphrase is empty.
        """
        if self.file is None:
            value = os.environ.get(self.env_var, "")
            if not value:
                raise ConfigError(
                    f"no backup passphrase: set backup.passphrase_file (a 0600 file) or the "
                    f"variable {self.env_var}", details={"field": "backup.passphrase_file"},
                )
            return value.removesuffix("\n")
        try:
            if self.file.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(
                    f"the backup passphrase file {self.file} is accessible by group or "
                    "others: chmod 600 it"
                )
            value = self.file.read_text(encoding="utf-8").removesuffix("\n")
        except FileNotFoundError as exc:
            raise ConfigError(f"the backup passphrase file {self.file} does not exist") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read the backup passphrase file {self.file}: {type(exc).__name__}"
            ) from exc
        if not value:
            raise ConfigError(f"the backup passphrase file {self.file} is empty")
        return value
