"""Key objects in the token: generate, find, list, and check that secrets stay inside.

Every key this adapter creates is a token object (survives restarts), private (needs the
login), sensitive and non-extractable. The token is asked for that in the template *and* the
attributes are read back afterwards: a module that silently ignores part of a template (some
do) would otherwise leave an exportable key behind, so such a key is destroyed and the call
fails with ``IntegrityError``.
"""

from __future__ import annotations

import re
from typing import Any, cast

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.mechanisms import GCMParams
from pkcs11.types import DecryptMixin, EncryptMixin, Object, SignMixin
from pkcs11.util.ec import encode_named_curve_parameters

from dpgnode.errors import ConflictError, IntegrityError, NotFoundError, ValidationError

from .secp256k1 import compressed_public_key

SECP256K1_PARAMS = encode_named_curve_parameters("secp256k1")
"""DER ``ECParameters`` naming secp256k1 (OID 1.3.132.0.10), as ``CKA_EC_PARAMS`` holds it."""
KEK_BITS = 256
REQUIRED_MECHANISMS = frozenset(
    {Mechanism.EC_KEY_PAIR_GEN, Mechanism.ECDSA, Mechanism.AES_KEY_GEN, Mechanism.AES_GCM}
)
"""What the signer needs from a token: secp256k1 keys, raw ECDSA, AES-256-GCM."""

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._/+-]{0,63}$")
_PROTECTION = (
    Attribute.TOKEN,
    Attribute.PRIVATE,
    Attribute.SENSITIVE,
    Attribute.ALWAYS_SENSITIVE,
    Attribute.EXTRACTABLE,
    Attribute.NEVER_EXTRACTABLE,
)
_MUST_BE = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.NEVER_EXTRACTABLE: True,
}


def check_label(label: str) -> str:
    """``label`` if it is 1..64 characters of ``A-Z a-z 0-9 : . _ / + -``, else ValidationError."""
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        raise ValidationError(
            "a key label is 1..64 characters of letters, digits and : . _ / + - "
            "(e.g. hot:BTC:regtest)",
            field="label",
        )
    return label


def protection(key: Object) -> dict[str, bool]:
    """The attributes that say whether the key's secret can leave the token."""
    values = key.get_attributes(list(_PROTECTION))
    return {attribute.name.lower(): bool(values[attribute]) for attribute in _PROTECTION}


def _ensure_protected(key: Object, label: str) -> None:
    values = key.get_attributes(list(_MUST_BE))
    if any(bool(values[attribute]) is not wanted for attribute, wanted in _MUST_BE.items()):
        key.destroy()
        raise IntegrityError(
            f"the token did not make key '{label}' sensitive and non-extractable; "
            "it has been destroyed"
        )


def _refuse_taken(session: pkcs11.Session, label: str) -> None:
    if list(session.get_objects({Attribute.LABEL: label})):
        raise ConflictError(
            f"the token already holds a key labelled '{label}'", details={"label": label}
        )


def generate_secp256k1(session: pkcs11.Session, label: str) -> tuple[SignMixin, bytes]:
    """A new key pair in the token and its compressed public key (``ConflictError`` if taken)."""
    _refuse_taken(session, label)
    parameters = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: SECP256K1_PARAMS}, local=True
    )
    public, private = parameters.generate_keypair(
        store=True,
        label=label,
        id=label.encode(),
        capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
        public_template={Attribute.PRIVATE: False},
        private_template={
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
        },
    )
    try:
        _ensure_protected(private, label)
    except IntegrityError:
        public.destroy()
        raise
    return cast(SignMixin, private), compressed_public_key(public[Attribute.EC_POINT])


def generate_kek(session: pkcs11.Session, label: str) -> Kek:
    """A new AES-256 key in the token that can only encrypt and decrypt (no wrap, no export)."""
    _refuse_taken(session, label)
    key = session.generate_key(
        KeyType.AES,
        KEK_BITS,
        label=label,
        id=label.encode(),
        store=True,
        capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
        template={
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
        },
    )
    _ensure_protected(key, label)
    return cast(Kek, key)


def _one(session: pkcs11.Session, attributes: dict[Attribute, Any], what: str) -> Any:
    found = list(session.get_objects(attributes))
    if not found:
        raise NotFoundError(f"the token holds no {what}", details={"kind": "hsm_key"})
    if len(found) > 1:
        raise IntegrityError(f"the token holds several {what}s: labels must be unique")
    return found[0]


def find_hot_key(session: pkcs11.Session, label: str) -> tuple[SignMixin, bytes]:
    """The private key labelled ``label`` and its compressed public key."""
    what = f"secp256k1 key labelled '{label}'"
    private = _one(
        session,
        {
            Attribute.CLASS: ObjectClass.PRIVATE_KEY,
            Attribute.KEY_TYPE: KeyType.EC,
            Attribute.LABEL: label,
        },
        what,
    )
    public = _one(
        session,
        {
            Attribute.CLASS: ObjectClass.PUBLIC_KEY,
            Attribute.KEY_TYPE: KeyType.EC,
            Attribute.LABEL: label,
        },
        f"public half of the {what}",
    )
    if bytes(public[Attribute.EC_PARAMS]) != SECP256K1_PARAMS:
        raise ValidationError(f"key '{label}' is not on secp256k1", field="label")
    return private, compressed_public_key(public[Attribute.EC_POINT])


class Kek(EncryptMixin, DecryptMixin):
    """Type of an AES key object: python-pkcs11 composes these mixins at run time."""


def gcm_encrypt(kek: Kek, data: bytes, params: GCMParams) -> bytes:
    """AES-GCM ``data`` under ``kek`` (ciphertext followed by the tag)."""
    out = kek.encrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params)
    if not isinstance(out, bytes):
        raise TypeError("python-pkcs11 returned a stream for one buffer")
    return out


def gcm_decrypt(kek: Kek, data: bytes, params: GCMParams) -> bytes:
    """Open AES-GCM ``data`` under ``kek``; the module raises if the tag does not match."""
    out = kek.decrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params)
    if not isinstance(out, bytes):
        raise TypeError("python-pkcs11 returned a stream for one buffer")
    return out


def find_kek(session: pkcs11.Session, label: str) -> Kek:
    """The AES key labelled ``label`` (``NotFoundError`` names ``dpg hsm init``)."""
    try:
        key: Kek = _one(
            session,
            {
                Attribute.CLASS: ObjectClass.SECRET_KEY,
                Attribute.KEY_TYPE: KeyType.AES,
                Attribute.LABEL: label,
            },
            f"key-encryption key labelled '{label}'",
        )
    except NotFoundError as exc:
        raise NotFoundError(
            f"{exc.message} (create it with `dpg hsm init`)", details={"label": label}
        ) from exc
    return key


def list_hot_keys(session: pkcs11.Session) -> list[tuple[str, bytes]]:
    """``(label, compressed public key)`` of every secp256k1 key pair, sorted by label."""
    private_labels = {
        str(key[Attribute.LABEL])
        for key in session.get_objects(
            {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: KeyType.EC}
        )
    }
    pairs = []
    for public in session.get_objects(
        {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.EC}
    ):
        label = str(public[Attribute.LABEL])
        if label in private_labels and bytes(public[Attribute.EC_PARAMS]) == SECP256K1_PARAMS:
            pairs.append((label, compressed_public_key(public[Attribute.EC_POINT])))
    return sorted(pairs)


def list_keks(session: pkcs11.Session) -> list[str]:
    """Labels of every AES key in the token, sorted."""
    return sorted(
        str(key[Attribute.LABEL])
        for key in session.get_objects(
            {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES}
        )
    )


def mechanism_names(session: pkcs11.Session) -> list[str]:
    """Names of the token's mechanisms (vendor-defined ones as hex), sorted."""
    mechanisms = session.token.slot.get_mechanisms()
    return sorted(m.name if isinstance(m, Mechanism) else f"0x{int(m):08x}" for m in mechanisms)


def has_required_mechanisms(session: pkcs11.Session) -> bool:
    """Whether the token offers every mechanism the signer needs."""
    return set(session.token.slot.get_mechanisms()) >= REQUIRED_MECHANISMS
