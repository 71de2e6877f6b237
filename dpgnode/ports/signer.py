"""The signer: the only place private keys and seeds exist (DESIGN.md "Keys").

Two kinds of spending key, both named by a reference that carries no secret:

- :class:`HotKeyRef`: a secp256k1 key pair generated inside the HSM (non-extractable,
  sensitive), one per asset and network, labelled e.g. ``hot:BTC:regtest``. The private half
  never leaves the HSM; signing happens inside it.
- :class:`HdKeyRef`: a key derived by BIP32 from a BIP39 seed that is stored only sealed
  (:class:`SealedSeed`: AES-256-GCM under a key-encryption key held in the HSM). The signer
  opens the seed, derives the child key, signs and wipes, all inside one call.

Invariants this module keeps: a :class:`Signature` is always low-S (``s <= n/2``, what Bitcoin
relays and Ethereum requires) with ``1 <= r, s < n``; a :class:`SealedSeed` is safe to store
and to log (it reveals nothing without the HSM-held KEK); no value crossing this port holds a
private key or a seed.

Errors every implementation raises (``dpgnode.errors``): ``ValidationError`` for malformed
input (a digest that is not 32 bytes, a bad path, a bad label); ``NotFoundError`` for an
unknown key label or KEK; ``ConflictError`` when a label is already taken;
``IntegrityError`` when a sealed seed does not open (tampered ciphertext, wrong AAD, wrong
KEK: the HSM cannot tell these apart and neither do we); ``AuthenticationError`` for a
refused PIN; ``UnavailableError`` when the HSM or its token cannot be reached; and
``ConfigError`` when the signer is not configured (no PIN source, no module). Messages never
contain a PIN, a seed or a private key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

from dpgnode.domain.custody.bip32 import CURVE_ORDER
from dpgnode.errors import ValidationError

SECP256K1_N = CURVE_ORDER
"""Order of the secp256k1 group."""
SECP256K1_HALF_N = SECP256K1_N // 2
"""Largest low-S value (BIP62 / EIP-2)."""

DIGEST_SIZE = 32
COMPRESSED_PUBKEY_SIZE = 33
SCHNORR_SIGNATURE_SIZE = 64
_SEALED_FORMAT = 1


def _der_int(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    if body[0] & 0x80:
        body = b"\x00" + body  # DER integers are signed: keep a positive value positive
    return b"\x02" + bytes([len(body)]) + body


@dataclass(frozen=True, slots=True)
class Signature:
    """An ECDSA signature over secp256k1, already normalised to low S.

    Attributes:
        r: The x coordinate of the nonce point, reduced mod n.
        s: The low-S proof value (``s <= n/2``).
        recovery_id: ``0..3``: which public key ``(r, s)`` recovers to, for the low-S form.
            Ethereum's ``v`` is ``recovery_id`` (typed transactions) or ``27 + recovery_id``.
    """

    r: int
    s: int
    recovery_id: int

    def __post_init__(self) -> None:
        if not 1 <= self.r < SECP256K1_N:
            raise ValidationError("signature r is out of range", field="r")
        if not 1 <= self.s <= SECP256K1_HALF_N:
            raise ValidationError("signature s is out of range or not low-S", field="s")
        if not 0 <= self.recovery_id <= 3:
            raise ValidationError("recovery id must be 0..3", field="recovery_id")

    def to_der(self) -> bytes:
        """Strict DER (BIP66) encoding, without a sighash byte."""
        body = _der_int(self.r) + _der_int(self.s)
        return b"\x30" + bytes([len(body)]) + body

    def to_rs64(self) -> bytes:
        """``r || s`` as two 32-byte big-endian integers (compact form, no recovery id)."""
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big")


@dataclass(frozen=True, slots=True)
class SealedSeed:
    """A BIP39 seed encrypted with AES-256-GCM under an HSM-held key (safe at rest).

    Attributes:
        kek_label: Label of the AES key in the HSM that sealed it.
        nonce: The 12-byte GCM nonce.
        ciphertext: The encrypted seed followed by the 16-byte GCM tag.
        aad: Associated data bound to the seal (e.g. the wallet id): opening with any other
            AAD fails, so a sealed seed cannot be swapped into another wallet's record.
    """

    kek_label: str
    nonce: bytes
    ciphertext: bytes
    aad: bytes

    def to_json(self) -> str:
        """A self-describing text form for storage (hex fields, versioned)."""
        return json.dumps(
            {
                "v": _SEALED_FORMAT,
                "kek": self.kek_label,
                "nonce": self.nonce.hex(),
                "ct": self.ciphertext.hex(),
                "aad": self.aad.hex(),
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> SealedSeed:
        """Parse :meth:`to_json` output; ``ValidationError`` on anything else."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("v") != _SEALED_FORMAT:
                raise ValueError("unknown format")
            return cls(
                kek_label=str(data["kek"]),
                nonce=bytes.fromhex(data["nonce"]),
                ciphertext=bytes.fromhex(data["ct"]),
                aad=bytes.fromhex(data["aad"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValidationError("not a sealed seed", field="sealed_seed") from exc


@dataclass(frozen=True, slots=True)
class HotKeyRef:
    """A key pair generated in the HSM, found by its label (e.g. ``hot:BTC:regtest``)."""

    label: str


@dataclass(frozen=True, slots=True)
class HdKeyRef:
    """A BIP32 child of a sealed seed, e.g. ``m/84'/1'/0'/0/5`` (``h`` works for ``'``)."""

    sealed: SealedSeed
    path: str


KeyRef = HotKeyRef | HdKeyRef


@dataclass(frozen=True, slots=True)
class HotKeyInfo:
    """A hot key present in the HSM: its label and compressed public key (never the secret)."""

    label: str
    public_key: bytes


@dataclass(frozen=True, slots=True)
class SignerStatus:
    """What the signer can see of its HSM, for ``dpg hsm status`` and health checks.

    Attributes:
        module: Path of the PKCS#11 module.
        token_label: Label of the token the signer uses.
        token_serial: The token's serial number, as the token reports it.
        manufacturer: The token's manufacturer.
        model: The token's model.
        mechanisms: Names of the mechanisms the token offers (sorted).
        can_sign: Whether the token offers ECDSA, EC key generation and AES-GCM.
        kek_label: Label of the active key-encryption key.
        kek_present: Whether that KEK exists in the token.
        keks: Labels of every AES key in the token (old KEKs during a rotation).
        hot_keys: The hot keys present, with their public keys.
    """

    module: str
    token_label: str
    token_serial: str
    manufacturer: str
    model: str
    mechanisms: tuple[str, ...]
    can_sign: bool
    kek_label: str
    kek_present: bool
    keks: tuple[str, ...] = ()
    hot_keys: tuple[HotKeyInfo, ...] = field(default=())


class Signer(Protocol):
    """Keeps private keys and seeds, and signs with them; nothing else sees a secret.

    Contract: every method is safe to call from several threads (implementations serialise
    access to the HSM themselves). Every signature returned is low-S and carries the recovery
    id of its low-S form. No method logs or returns a secret. Errors are those of the module
    docstring; vendor exceptions never escape.
    """

    def status(self) -> SignerStatus:
        """Describe the HSM, its token and the keys in it (public halves only).

        Raises:
            UnavailableError: The module or the token cannot be reached.
            AuthenticationError: The PIN is refused.
        """
        ...

    def generate_hot_key(self, label: str) -> bytes:
        """Generate a secp256k1 key pair inside the HSM (non-extractable, sensitive).

        Args:
            label: The new key's label, e.g. ``hot:ETH:mainnet``.

        Returns:
            The 33-byte compressed public key.

        Raises:
            ConflictError: A key with this label exists already (it is never replaced).
            ValidationError: The label is empty or too long.
        """
        ...

    def public_key(self, ref: KeyRef) -> bytes:
        """The 33-byte compressed public key of ``ref``.

        Raises:
            NotFoundError: No hot key has this label.
            IntegrityError: The sealed seed of an ``HdKeyRef`` does not open.
        """
        ...

    def sign_ecdsa(self, ref: KeyRef, digest32: bytes) -> Signature:
        """Sign a 32-byte digest the caller computed (sighash, keccak256).

        Raises:
            ValidationError: ``digest32`` is not 32 bytes, or the path is malformed.
            NotFoundError: No hot key has this label.
            IntegrityError: The sealed seed of an ``HdKeyRef`` does not open.
        """
        ...

    def sign_schnorr(
        self, ref: HdKeyRef, digest32: bytes, *, merkle_root: bytes | None = None
    ) -> bytes:
        """A 64-byte BIP340 signature by the BIP341-tweaked key of ``ref`` (P2TR key path).

        The output key is ``P + H_TapTweak(x(P) || merkle_root) * G`` (``merkle_root``
        ``None``: no script tree, BIP86); the signature verifies against its x coordinate.

        Raises:
            ValidationError: ``digest32`` is not 32 bytes or ``merkle_root`` not 32 bytes.
            IntegrityError: The sealed seed does not open.
        """
        ...

    def seal_seed(self, seed: bytes, *, aad: bytes) -> SealedSeed:
        """Seal a BIP39 seed (16..64 bytes) under the active KEK, bound to ``aad``.

        Raises:
            ValidationError: The seed length is not 16..64 bytes.
            NotFoundError: The active KEK does not exist (run ``dpg hsm init``).
        """
        ...

    def account_xpub(self, sealed: SealedSeed, path: str, *, version: bytes) -> str:
        """The serialised extended public key at ``path`` (e.g. ``m/84'/0'/0'``).

        Args:
            sealed: The wallet's sealed seed.
            path: A BIP32 path from the master key.
            version: The 4 version bytes (SLIP-132: xpub, zpub, tpub, vpub ...).

        Raises:
            ValidationError: The path or the version is malformed.
            IntegrityError: The sealed seed does not open.
        """
        ...

    def rotate_kek(self, sealed: SealedSeed) -> SealedSeed:
        """Re-seal under the active KEK (same AAD, fresh nonce); the seed stays in the signer.

        Raises:
            NotFoundError: The old or the active KEK is missing.
            IntegrityError: ``sealed`` does not open.
        """
        ...
