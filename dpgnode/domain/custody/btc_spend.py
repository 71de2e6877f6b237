"""Planning a Bitcoin spend: coin selection, fee from a fee rate, change, dust, witnesses.

Pure. The result, :class:`UnsignedSpend`, says for every input which digest must be signed
and by which key (an opaque ``key_id`` the caller maps to a signer key), and
:meth:`UnsignedSpend.finalize` assembles the signed transaction from the signatures.

Rules (each one refuses with a ``DpgError`` before anything is signed):

- inputs are P2WPKH or P2TR (key path) outputs; every input signals RBF (nSequence
  ``0xfffffffd``); the transaction is version 2;
- destinations are standard output scripts (P2PKH, P2SH, segwit v0 P2WPKH/P2WSH, segwit
  v1+ programs) and carry at least the dust threshold of Bitcoin Core's policy for their type
  (3 sat/vB dust relay fee);
- the fee is ``ceil(vsize * rate)`` where vsize is the largest the signed transaction can be
  (a 72-byte DER signature for P2WPKH, 64-byte Schnorr for P2TR), so the paid rate is never
  below the requested one; rates are in sat/kvB so sub-sat/vB rates stay exact integers;
- change goes to ``change_script`` as the last output, unless it would be dust: then it is
  left to the fee (never more than the dust threshold plus the change output's own cost);
- coin selection is largest-first with ``(value desc, txid, vout)`` order: deterministic, few
  inputs, and easy to explain; candidates that do not cover outputs plus fee raise
  ``InsufficientFundsError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from dpgnode.domain.custody.addresses import parse_address
from dpgnode.domain.custody.btc_tx import (
    MAX_MONEY,
    SEQUENCE_RBF,
    SIGHASH_ALL,
    InputKind,
    Transaction,
    TxIn,
    TxOut,
    compact_size,
    dust_threshold,
    input_kind,
    is_standard_output,
    p2wpkh_script_code,
    segwit_v0_sighash,
    taproot_key_path_sighash,
    wire_to_txid,
)
from dpgnode.domain.custody.encoding import sha256d
from dpgnode.domain.custody.networks import Network
from dpgnode.errors import InsufficientFundsError, ValidationError

TX_VERSION = 2
MAX_FEE_RATE_SAT_PER_KVB = 10_000_000
"""10,000 sat/vB: Bitcoin Core's default ``maxfeerate`` for sendrawtransaction (0.1 BTC/kvB)."""
MAX_STANDARD_WEIGHT = 400_000
"""Largest transaction weight Bitcoin Core relays."""
_P2WPKH_WITNESS_MAX = 1 + (1 + 73) + (1 + 33)  # items, DER sig <= 72 + hash type, pubkey
_P2TR_KEY_PATH_WITNESS = 1 + (1 + 64)  # items, Schnorr sig with SIGHASH_DEFAULT


@dataclass(frozen=True, slots=True, order=True)
class FeeRate:
    """A fee rate in satoshis per 1000 virtual bytes (exact for fractional sat/vB rates)."""

    sat_per_kvb: int

    def __post_init__(self) -> None:
        if type(self.sat_per_kvb) is not int or not 0 < self.sat_per_kvb <= (
            MAX_FEE_RATE_SAT_PER_KVB
        ):
            raise ValidationError(
                "fee rate must be above 0 and at most 10000 sat/vB", field="fee_rate"
            )

    @classmethod
    def from_sat_per_vb(cls, text: str | int) -> FeeRate:
        """Parse ``"1.5"`` (sat/vB, up to 3 decimals) exactly; never through a float."""
        try:
            value = Decimal(str(text))
        except InvalidOperation as exc:
            raise ValidationError("fee rate is not a number", field="fee_rate") from exc
        # Range first: arithmetic on a signalling NaN or on 1e999999 raises decimal's own
        # exceptions, which must not escape as anything but a ValidationError.
        if not value.is_finite() or not 0 < value <= MAX_FEE_RATE_SAT_PER_KVB // 1000:
            raise ValidationError(
                "fee rate must be above 0 and at most 10000 sat/vB", field="fee_rate"
            )
        scaled = value.scaleb(3)
        if scaled != scaled.to_integral_value():
            raise ValidationError("fee rate has more than 3 decimals", field="fee_rate")
        return cls(int(scaled))

    def fee(self, vsize: int) -> int:
        """Satoshis for ``vsize`` virtual bytes, rounded up."""
        return -(-vsize * self.sat_per_kvb // 1000)


@dataclass(frozen=True, slots=True)
class Utxo:
    """An output the node can spend.

    Attributes:
        txid: The funding transaction (display form).
        vout: The output's index in it.
        value_sats: Its value.
        script_pubkey: Its locking script (P2WPKH or P2TR).
        key_id: Opaque to the domain: names the key that signs for it; the signing service
            maps it to a signer key reference.
    """

    txid: str
    vout: int
    value_sats: int
    script_pubkey: bytes
    key_id: str

    def __post_init__(self) -> None:
        input_kind(self.script_pubkey)
        if type(self.value_sats) is not int or not 0 < self.value_sats <= MAX_MONEY:
            raise ValidationError("UTXO value must be 1..21e14 satoshis", field="utxos.value")
        if not self.key_id:
            raise ValidationError("UTXO needs a key id", field="utxos.key_id")

    @property
    def kind(self) -> InputKind:
        """P2WPKH or P2TR."""
        return input_kind(self.script_pubkey)

    def to_txin(self) -> TxIn:
        """The RBF-signalling input that spends this output."""
        return TxIn(self.txid, self.vout, SEQUENCE_RBF)


def estimate_vsize(kinds: Sequence[InputKind], output_scripts: Sequence[bytes]) -> int:
    """The largest vsize a transaction of these inputs and outputs can have once signed."""
    base = 4 + len(compact_size(len(kinds))) + 41 * len(kinds)
    base += len(compact_size(len(output_scripts)))
    base += sum(len(TxOut(s, 0).serialize()) for s in output_scripts) + 4
    witness = 2 + sum(
        _P2WPKH_WITNESS_MAX if k is InputKind.P2WPKH else _P2TR_KEY_PATH_WITNESS for k in kinds
    )
    return -(-(base * 4 + witness) // 4)


@dataclass(frozen=True, slots=True)
class SigningRequest:
    """One input's digest and how its signature goes into the witness."""

    index: int
    kind: InputKind
    key_id: str
    digest: bytes
    script_pubkey: bytes


@dataclass(frozen=True, slots=True)
class UnsignedSpend:
    """A planned transaction: every field fixed, only signatures missing.

    Attributes:
        tx: The transaction (inputs in selection order; change, if any, last).
        spent: The outputs the inputs spend, in input order.
        fee_sats: The fee it pays (inputs minus outputs).
        fee_rate: The rate it was planned at.
        change_index: Position of the change output, or ``None`` when change was dust.
        max_vsize: The largest vsize it can have once signed (fee was computed on it).
    """

    tx: Transaction
    spent: tuple[Utxo, ...]
    fee_sats: int
    fee_rate: FeeRate
    change_index: int | None
    max_vsize: int

    def signing_requests(self) -> tuple[SigningRequest, ...]:
        """One request per input: the BIP143 or BIP341 digest the key must sign."""
        spent_outs = [TxOut(u.script_pubkey, u.value_sats) for u in self.spent]
        requests = []
        for index, utxo in enumerate(self.spent):
            if utxo.kind is InputKind.P2WPKH:
                code = p2wpkh_script_code(utxo.script_pubkey[2:])
                digest = segwit_v0_sighash(self.tx, index, code, utxo.value_sats)
            else:
                digest = taproot_key_path_sighash(self.tx, spent_outs, index)
            requests.append(
                SigningRequest(index, utxo.kind, utxo.key_id, digest, utxo.script_pubkey)
            )
        return tuple(requests)

    def finalize(self, witnesses: Sequence[Sequence[bytes]]) -> SignedBitcoinTx:
        """The signed transaction from one witness stack per input (see :func:`witness_for`)."""
        raw = self.tx.serialize(witnesses)
        base = len(self.tx.serialize())
        weight = base * 3 + len(raw)
        return SignedBitcoinTx(
            raw=raw,
            txid=self.tx.txid(),
            wtxid=wire_to_txid(sha256d(raw)),
            vsize=-(-weight // 4),
            fee_sats=self.fee_sats,
        )


def witness_for(kind: InputKind, signature: bytes, pubkey: bytes | None = None) -> list[bytes]:
    """The witness stack of a key spend.

    Args:
        kind: The input's kind.
        signature: DER ECDSA signature (P2WPKH; ``SIGHASH_ALL`` is appended here) or the
            64-byte BIP340 signature (P2TR, ``SIGHASH_DEFAULT``: no hash-type byte).
        pubkey: The 33-byte compressed key (P2WPKH only).
    """
    if kind is InputKind.P2WPKH:
        if pubkey is None or len(pubkey) != 33:
            raise ValidationError("P2WPKH witness needs a compressed key", field="pubkey")
        return [signature + bytes([SIGHASH_ALL]), pubkey]
    if len(signature) != 64:
        raise ValidationError("a key-path signature is 64 bytes", field="signature")
    return [signature]


@dataclass(frozen=True, slots=True)
class SignedBitcoinTx:
    """A fully signed transaction, ready for ``sendrawtransaction``."""

    raw: bytes
    txid: str
    wtxid: str
    vsize: int
    fee_sats: int

    @property
    def raw_hex(self) -> str:
        """The raw transaction as hex."""
        return self.raw.hex()


@dataclass(frozen=True, slots=True)
class Payment:
    """An output the caller wants: a standard destination script and an amount in satoshis."""

    script_pubkey: bytes
    value_sats: int

    @classmethod
    def to_address(
        cls, address: str, network: Network, value_sats: int, *, field: str = "destination"
    ) -> Payment:
        """A payment to address text, which must be valid for ``network``.

        Raises:
            ValidationError: a malformed address, a bad checksum, or one of another network.
        """
        return cls(parse_address(address, network, field=field).script_pubkey, value_sats)


def _check_payments(payments: Sequence[Payment]) -> None:
    if not payments:
        raise ValidationError("a spend needs at least one destination", field="outputs")
    for i, payment in enumerate(payments):
        if not is_standard_output(payment.script_pubkey):
            raise ValidationError(
                "destination is not a standard address script", field=f"outputs[{i}].address"
            )
        if type(payment.value_sats) is not int or payment.value_sats > MAX_MONEY:
            raise ValidationError("amount out of range", field=f"outputs[{i}].amount")
        dust = dust_threshold(payment.script_pubkey)
        if payment.value_sats < dust:
            raise ValidationError(
                f"amount is below the dust threshold of {dust} sats for this destination",
                field=f"outputs[{i}].amount",
                details={"dust_threshold_sats": dust},
            )


def select_coins(
    candidates: Sequence[Utxo],
    payments: Sequence[Payment],
    *,
    change_script: bytes,
    fee_rate: FeeRate,
) -> tuple[Utxo, ...]:
    """Largest-first selection of enough candidates to pay ``payments`` plus the fee.

    The fee counted is the one with a change output, so the selection usually affords
    change; :func:`build_spend` drops the change again when it would be dust. When no prefix
    affords a change output, the shortest prefix that pays the outputs and the fee of a
    transaction *without* change is chosen (the remainder goes to the fee), so funds that
    can pay are never refused as insufficient.

    Raises:
        InsufficientFundsError: All candidates together do not cover outputs plus the fee
            of a transaction without change.
    """
    _check_payments(payments)
    ordered = sorted(candidates, key=lambda u: (-u.value_sats, u.txid, u.vout))
    destinations = [p.script_pubkey for p in payments]
    target = sum(p.value_sats for p in payments)
    total = 0
    without_change: int | None = None  # shortest prefix that pays when change is dropped
    for count, utxo in enumerate(ordered, start=1):
        total += utxo.value_sats
        kinds = [u.kind for u in ordered[:count]]
        if total >= target + fee_rate.fee(estimate_vsize(kinds, [*destinations, change_script])):
            return tuple(ordered[:count])
        if without_change is None and total >= target + fee_rate.fee(
            estimate_vsize(kinds, destinations)
        ):
            without_change = count
    if without_change is not None:
        return tuple(ordered[:without_change])
    kinds = [u.kind for u in ordered] or [InputKind.P2WPKH]
    fee = fee_rate.fee(estimate_vsize(kinds, destinations))
    raise InsufficientFundsError(
        "spendable outputs do not cover the amount plus the fee",
        details={"required_sats": target + fee, "available_sats": total},
    )


def build_spend(
    inputs: Sequence[Utxo],
    payments: Sequence[Payment],
    *,
    change_script: bytes,
    fee_rate: FeeRate,
    locktime: int = 0,
) -> UnsignedSpend:
    """Plan a transaction spending exactly ``inputs`` (see :func:`select_coins`).

    Raises:
        ValidationError: A destination is non-standard or dust, the change script is not
            standard, an input is spent twice, or the transaction would be too large.
        InsufficientFundsError: ``inputs`` do not cover the payments plus the fee.
    """
    _check_payments(payments)
    if not inputs:
        raise ValidationError("a spend needs at least one input", field="utxos")
    if not is_standard_output(change_script):
        raise ValidationError(
            "change script is not a standard address script", field="change_address"
        )
    kinds = [u.kind for u in inputs]
    outs = [TxOut(p.script_pubkey, p.value_sats) for p in payments]
    total_in = sum(u.value_sats for u in inputs)
    total_out = sum(p.value_sats for p in payments)
    scripts = [p.script_pubkey for p in payments]
    vsize_with_change = estimate_vsize(kinds, [*scripts, change_script])
    change = total_in - total_out - fee_rate.fee(vsize_with_change)
    change_index: int | None = None
    if change >= dust_threshold(change_script):
        outs.append(TxOut(change_script, change))
        change_index, max_vsize = len(outs) - 1, vsize_with_change
    else:
        max_vsize = estimate_vsize(kinds, scripts)
        if total_in - total_out < fee_rate.fee(max_vsize):
            raise InsufficientFundsError(
                "inputs do not cover the amount plus the fee",
                details={
                    "required_sats": total_out + fee_rate.fee(max_vsize),
                    "available_sats": total_in,
                },
            )
    if max_vsize * 4 > MAX_STANDARD_WEIGHT:
        raise ValidationError("too many inputs for one standard transaction", field="utxos")
    tx = Transaction(TX_VERSION, tuple(u.to_txin() for u in inputs), tuple(outs), locktime)
    fee = total_in - sum(o.value_sats for o in outs)
    return UnsignedSpend(tx, tuple(inputs), fee, fee_rate, change_index, max_vsize)


def plan_spend(
    candidates: Sequence[Utxo],
    payments: Sequence[Payment],
    *,
    change_script: bytes,
    fee_rate: FeeRate,
    locktime: int = 0,
) -> UnsignedSpend:
    """:func:`select_coins` then :func:`build_spend`: the usual way to pay from a wallet."""
    chosen = select_coins(candidates, payments, change_script=change_script, fee_rate=fee_rate)
    return build_spend(
        chosen, payments, change_script=change_script, fee_rate=fee_rate, locktime=locktime
    )
