"""Sign planned Bitcoin and EVM transactions through the :class:`~dpgnode.ports.signer.Signer`.

The domain plans the transaction and says which digest each key must sign
(:mod:`dpgnode.domain.custody.btc_spend`, :mod:`dpgnode.domain.custody.evm_tx`); the signer
holds the keys; this module checks, signs and assembles. Spend policy (limits, allow-lists,
approvals) is decided before these functions are called, by the payouts service.

Guarantees:

- everything that can be checked without a signature is checked before the first one is
  asked for: every input has a key, every key controls the output it spends (its public key
  hashes / tweaks to that script), the EVM key is the expected sender. A refusal therefore
  means nothing was signed (``ValidationError`` naming the input);
- every signature is verified against its digest and public key before it goes into a
  transaction, so a faulty HSM or driver cannot make us publish an invalid transaction
  (``IntegrityError``);
- P2WPKH inputs are signed with ECDSA ``SIGHASH_ALL``, P2TR key-path inputs with BIP340
  Schnorr ``SIGHASH_DEFAULT`` (BIP86: no script tree); EVM transactions carry the recovery id
  the signer returned, checked by recovering the public key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from coincurve import PublicKey, PublicKeyXOnly

from dpgnode.domain.custody.addresses import script_pubkey_from_public_key
from dpgnode.domain.custody.btc_spend import SigningRequest, UnsignedSpend, witness_for
from dpgnode.domain.custody.btc_tx import InputKind
from dpgnode.domain.custody.evm import evm_address_from_public_key, parse_evm_address
from dpgnode.domain.custody.evm_tx import Eip1559Transaction, transaction_hash
from dpgnode.domain.custody.networks import AddressType
from dpgnode.errors import IntegrityError, ValidationError
from dpgnode.ports.signer import HdKeyRef, KeyRef, Signer

_ADDRESS_TYPE = {InputKind.P2WPKH: AddressType.P2WPKH, InputKind.P2TR: AddressType.P2TR}


@dataclass(frozen=True, slots=True)
class SignedTx:
    """A signed transaction ready to broadcast.

    Attributes:
        raw_hex: The raw transaction, hex without ``0x`` (Bitcoin) or with ``0x`` (EVM), as
            each chain's ``sendrawtransaction`` / ``eth_sendRawTransaction`` takes it.
        txid: The id the chain will report: Bitcoin txid (display order) or EVM ``0x`` hash.
        fee: What it pays the network, when the signed bytes fix it (Bitcoin: inputs minus
            outputs); ``None`` for EVM, whose fee is only known from the receipt.
        spends: Its conflict keys: the ``txid:vout`` it spends, or ``0xsender:nonce``
            (the chain watcher's notation, :mod:`dpgnode.domain.chains.blocks`).
    """

    raw_hex: str
    txid: str
    fee: int | None = None
    spends: tuple[str, ...] = ()


def _resolve_keys(
    signer: Signer, requests: tuple[SigningRequest, ...], key_refs: Mapping[str, KeyRef]
) -> list[tuple[KeyRef, bytes]]:
    """The key and public key of every input, checked against the script it spends."""
    resolved: list[tuple[KeyRef, bytes]] = []
    public_keys: dict[KeyRef, bytes] = {}
    for request in requests:
        ref = key_refs.get(request.key_id)
        if ref is None:
            raise ValidationError(
                f"no signing key for input {request.index}",
                field="key_refs",
                details={"input": request.index, "key_id": request.key_id},
            )
        if request.kind is InputKind.P2TR and not isinstance(ref, HdKeyRef):
            raise ValidationError(
                f"input {request.index} is P2TR: only HD keys sign taproot spends",
                field="key_refs",
                details={"input": request.index},
            )
        if ref not in public_keys:
            public_keys[ref] = signer.public_key(ref)
        public_key = public_keys[ref]
        if script_pubkey_from_public_key(public_key, _ADDRESS_TYPE[request.kind]) != (
            request.script_pubkey
        ):
            raise ValidationError(
                f"the key for input {request.index} does not control the output it spends",
                field="key_refs",
                details={"input": request.index, "key_id": request.key_id},
            )
        resolved.append((ref, public_key))
    return resolved


def _sign_input(
    signer: Signer, request: SigningRequest, ref: KeyRef, public_key: bytes
) -> list[bytes]:
    """Sign one input, verify the signature, and return its witness stack."""
    if request.kind is InputKind.P2WPKH:
        signature = signer.sign_ecdsa(ref, request.digest)
        der = signature.to_der()
        if not PublicKey(public_key).verify(der, request.digest, hasher=None):
            raise IntegrityError(
                "the signer returned an ECDSA signature that does not verify",
                details={"input": request.index},
            )
        return witness_for(request.kind, der, public_key)
    if not isinstance(ref, HdKeyRef):  # _resolve_keys refused this already
        raise IntegrityError("P2TR input without an HD key", details={"input": request.index})
    schnorr = signer.sign_schnorr(ref, request.digest)
    output_key = request.script_pubkey[2:]
    if len(schnorr) != 64 or not PublicKeyXOnly(output_key).verify(schnorr, request.digest):
        raise IntegrityError(
            "the signer returned a Schnorr signature that does not verify",
            details={"input": request.index},
        )
    return witness_for(request.kind, schnorr)


def sign_bitcoin(
    signer: Signer, unsigned_tx: UnsignedSpend, key_refs: Mapping[str, KeyRef]
) -> SignedTx:
    """Sign every input of a planned spend and return the raw transaction.

    Args:
        signer: Holds the keys.
        unsigned_tx: The plan from :func:`~dpgnode.domain.custody.btc_spend.plan_spend`.
        key_refs: The signer key of each ``Utxo.key_id`` among the inputs.

    Raises:
        ValidationError: An input has no key, a P2TR input has a hot key, or a key does not
            control its input's output script (nothing was signed).
        IntegrityError: The signer returned a signature that does not verify.
    """
    requests = unsigned_tx.signing_requests()
    keys = _resolve_keys(signer, requests, key_refs)
    witnesses = [
        _sign_input(signer, request, ref, public_key)
        for request, (ref, public_key) in zip(requests, keys, strict=True)
    ]
    signed = unsigned_tx.finalize(witnesses)
    return SignedTx(raw_hex=signed.raw_hex, txid=signed.txid, fee=signed.fee_sats,
                    spends=tuple(f"{u.txid}:{u.vout}" for u in unsigned_tx.spent))


def sign_evm(
    signer: Signer, tx: Eip1559Transaction, key_ref: KeyRef, *, sender: str | None = None
) -> SignedTx:
    """Sign an EIP-1559 transaction and return its raw form and hash.

    Args:
        signer: Holds the key.
        tx: The transaction (its nonce must be the sender's next one).
        key_ref: The sender's key.
        sender: The address the caller believes sends it (whose nonce it used); when given,
            the key must belong to it.

    Raises:
        ValidationError: ``sender`` is not the key's address (nothing was signed).
        IntegrityError: The signature does not recover to the key.
    """
    public_key = signer.public_key(key_ref)
    if sender is not None:
        expected = parse_evm_address(sender, field="sender").text
        if evm_address_from_public_key(public_key) != expected:
            raise ValidationError(
                "the signing key does not belong to the sending address", field="sender"
            )
    digest = tx.signing_hash()
    signature = signer.sign_ecdsa(key_ref, digest)
    recovered = PublicKey.from_signature_and_message(
        signature.to_rs64() + bytes([signature.recovery_id]), digest, hasher=None
    )
    if signature.recovery_id > 1 or recovered.format(compressed=True) != public_key:
        raise IntegrityError("the signer's signature does not recover to its public key")
    raw = tx.encode_signed(signature.recovery_id, signature.r, signature.s)
    conflict = f"{evm_address_from_public_key(public_key).lower()}:{tx.nonce}"
    return SignedTx(raw_hex="0x" + raw.hex(), txid=transaction_hash(raw), spends=(conflict,))
