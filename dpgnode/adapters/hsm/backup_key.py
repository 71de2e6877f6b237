"""The backup key: a P-256 key pair in the token whose private half can only derive (ECDH).

Backups are encrypted to its public half (``dpgnode.adapters.backup.keys.EcdhRecipient``)
by processes that never load the HSM; opening one asks the token for the ECDH secret with
the backup's ephemeral public key. The private key is created sensitive, non-extractable
and with ``DERIVE`` as its only use, and that is read back (as for every key here). The
derived secret is a session object made extractable so its value can be read, and
destroyed right after: it is per backup, like the data key it protects.
"""

from __future__ import annotations

from typing import Any, cast

import pkcs11
from pkcs11 import KDF, Attribute, KeyType, MechanismFlag, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from dpgnode.errors import NotFoundError, ValidationError

from .objects import _ensure_protected, _one, _refuse_taken

P256_PARAMS = encode_named_curve_parameters("secp256r1")
_SECRET_BITS = 256
_POINT_BYTES = 65


def generate(session: pkcs11.Session, label: str) -> bytes:
    """A new P-256 derive-only key pair labelled ``label``; its public key as DER."""
    _refuse_taken(session, label)
    parameters = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: P256_PARAMS}, local=True
    )
    public, private = parameters.generate_keypair(
        store=True,
        label=label,
        id=label.encode(),
        capabilities=MechanismFlag.DERIVE,
        public_template={Attribute.PRIVATE: False},
        private_template={
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.DERIVE: True,
            Attribute.SIGN: False,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
        },
    )
    try:
        _ensure_protected(private, label)
    except Exception:
        public.destroy()
        raise
    return bytes(encode_ec_public_key(public))


def _pair(session: pkcs11.Session, label: str) -> tuple[Any, Any]:
    what = f"backup key labelled '{label}'"
    try:
        private = _one(
            session,
            {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: KeyType.EC,
             Attribute.LABEL: label},
            what,
        )
        public = _one(
            session,
            {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.EC,
             Attribute.LABEL: label},
            f"public half of the {what}",
        )
    except NotFoundError as exc:
        raise NotFoundError(
            f"{exc.message} (create it with `dpg backup key create`)", details={"label": label}
        ) from exc
    if bytes(public[Attribute.EC_PARAMS]) != P256_PARAMS:
        raise ValidationError(f"key '{label}' is not a P-256 key", field="backup.hsm_key_label")
    return private, public


def private_key(session: pkcs11.Session, label: str) -> Any:
    """The backup key's private half (a handle; its value never leaves the token)."""
    return _pair(session, label)[0]


def exists(session: pkcs11.Session, label: str) -> bool:
    """Whether the token holds the backup key pair ``label``."""
    try:
        _pair(session, label)
    except NotFoundError:
        return False
    return True


def is_backup_key(session: pkcs11.Session, label: str) -> bool:
    """Whether ``label`` names a P-256 backup key pair (a hot key of another curve is not)."""
    try:
        _pair(session, label)
    except (NotFoundError, ValidationError):
        return False
    return True


def public_der(session: pkcs11.Session, label: str) -> bytes:
    """The backup key's public half (SubjectPublicKeyInfo DER)."""
    return bytes(encode_ec_public_key(_pair(session, label)[1]))


def agree(session: pkcs11.Session, label: str, peer_point: bytes) -> bytes:
    """ECDH of the backup key with ``peer_point`` (uncompressed P-256), computed in the token."""
    if len(peer_point) != _POINT_BYTES or peer_point[0] != 4:
        raise ValidationError("an ephemeral key is an uncompressed P-256 point", field="backup")
    private = _pair(session, label)[0]
    derived = cast(Any, private).derive_key(
        KeyType.GENERIC_SECRET, _SECRET_BITS,
        mechanism_param=(KDF.NULL, None, peer_point),
        template={Attribute.TOKEN: False, Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
    )
    try:
        return bytes(derived[Attribute.VALUE])
    finally:
        derived.destroy()
