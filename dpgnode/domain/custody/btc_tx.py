"""Bitcoin transactions: wire format, txid, script kinds and dust, BIP143 / BIP341 sighashes.

Pure: bytes in, bytes out, stdlib hashing only. Building a spend (coin selection, fees, change)
lives in :mod:`dpgnode.domain.custody.btc_spend`; signing happens in the signer, and the
service ``dpgnode.services.custody.tx_signing`` glues the two.

Invariants this module keeps:

- a :class:`Transaction` is version 1 or 2, has at least one input and one output, and every
  value is an integer number of satoshis in ``0..MAX_MONEY`` (never a float);
- txids are shown the way nodes show them (byte-reversed hex) and serialised internally in
  wire order; one function converts, so the two orders never mix;
- dust thresholds and "standard destination" follow Bitcoin Core's default relay policy, so
  a transaction this node builds is one nodes relay;
- the signature hashes are exactly BIP143 (segwit v0, ``SIGHASH_ALL``) and BIP341 (taproot key
  path, every hash type, no annex): tests pin them to the BIPs' vectors and to
  python-bitcoinlib.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from dpgnode.domain.custody.encoding import sha256d
from dpgnode.errors import ValidationError

MAX_MONEY = 21_000_000 * 100_000_000
"""No output may carry more satoshis than will ever exist (consensus rule)."""
SEQUENCE_RBF = 0xFFFFFFFD
"""nSequence that signals opt-in replace-by-fee (BIP125) and still enables nLockTime."""
SIGHASH_ALL = 0x01
SIGHASH_NONE = 0x02
SIGHASH_SINGLE = 0x03
SIGHASH_ANYONECANPAY = 0x80
SIGHASH_DEFAULT = 0x00
"""BIP341's implicit ``SIGHASH_ALL`` whose 64-byte signature carries no hash-type byte."""
DUST_RELAY_SAT_PER_KVB = 3_000
"""Bitcoin Core's default dust relay fee: an output worth less than spending it is dust."""
_TAPROOT_HASH_TYPES = frozenset({0x00, 0x01, 0x02, 0x03, 0x81, 0x82, 0x83})
_TXID = re.compile(r"^[0-9a-f]{64}$")


def sha256(data: bytes) -> bytes:
    """Single SHA-256."""
    return hashlib.sha256(data).digest()


def tagged_hash(tag: str, data: bytes) -> bytes:
    """BIP340 tagged hash: ``sha256(sha256(tag) || sha256(tag) || data)``."""
    tag_hash = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(tag_hash + tag_hash + data).digest()


def compact_size(n: int) -> bytes:
    """Bitcoin's variable-length integer ("CompactSize") prefix."""
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def push_bytes(data: bytes) -> bytes:
    """``data`` prefixed by its CompactSize length (script and witness item framing)."""
    return compact_size(len(data)) + data


def txid_to_wire(txid: str) -> bytes:
    """The 32 wire-order bytes of a txid written as nodes display it (reversed hex)."""
    if not _TXID.fullmatch(txid):
        raise ValidationError("a txid is 64 lowercase hex digits", field="txid")
    return bytes.fromhex(txid)[::-1]


def wire_to_txid(digest: bytes) -> str:
    """The display form (reversed hex) of a 32-byte wire-order hash."""
    return digest[::-1].hex()


@dataclass(frozen=True, slots=True)
class TxIn:
    """An input before signing: which output it spends, and its nSequence.

    Attributes:
        txid: The spent transaction, as nodes display it.
        vout: The spent output's index.
        sequence: nSequence; :data:`SEQUENCE_RBF` for the spends this node builds.
    """

    txid: str
    vout: int
    sequence: int = SEQUENCE_RBF

    def __post_init__(self) -> None:
        txid_to_wire(self.txid)
        if not 0 <= self.vout <= 0xFFFFFFFF:
            raise ValidationError("vout must fit 32 bits", field="vout")
        if not 0 <= self.sequence <= 0xFFFFFFFF:
            raise ValidationError("sequence must fit 32 bits", field="sequence")

    def outpoint(self) -> bytes:
        """The 36-byte serialised outpoint (wire txid || vout LE)."""
        return txid_to_wire(self.txid) + self.vout.to_bytes(4, "little")


@dataclass(frozen=True, slots=True)
class TxOut:
    """An output: a locking script and an integer number of satoshis."""

    script_pubkey: bytes
    value_sats: int

    def __post_init__(self) -> None:
        if type(self.value_sats) is not int or not 0 <= self.value_sats <= MAX_MONEY:
            raise ValidationError("output value must be 0..21e14 satoshis", field="value")
        if len(self.script_pubkey) > 10_000:
            raise ValidationError("output script is too long", field="script_pubkey")

    def serialize(self) -> bytes:
        """Wire form: value (8 bytes LE) || CompactSize-prefixed script."""
        return self.value_sats.to_bytes(8, "little") + push_bytes(self.script_pubkey)


@dataclass(frozen=True, slots=True)
class Transaction:
    """A transaction's fields other than witnesses (which only :meth:`serialize` takes)."""

    version: int
    inputs: tuple[TxIn, ...]
    outputs: tuple[TxOut, ...]
    locktime: int = 0

    def __post_init__(self) -> None:
        if self.version not in (1, 2):
            raise ValidationError("transaction version must be 1 or 2", field="version")
        if not self.inputs:
            raise ValidationError("a transaction needs at least one input", field="inputs")
        if not self.outputs:
            raise ValidationError("a transaction needs at least one output", field="outputs")
        if not 0 <= self.locktime <= 0xFFFFFFFF:
            raise ValidationError("locktime must fit 32 bits", field="locktime")
        if len({i.outpoint() for i in self.inputs}) != len(self.inputs):
            raise ValidationError("an outpoint is spent twice", field="inputs")
        if sum(o.value_sats for o in self.outputs) > MAX_MONEY:
            raise ValidationError("outputs add up to more than 21e14 satoshis", field="outputs")

    def serialize(self, witnesses: Sequence[Sequence[bytes]] | None = None) -> bytes:
        """Wire bytes: legacy form without witnesses, BIP144 (marker 0x00, flag 0x01) with.

        Args:
            witnesses: One stack per input (possibly empty), or ``None`` for the txid form.
        """
        body = compact_size(len(self.inputs))
        # scriptSig is empty: every input this node signs is a native segwit spend.
        body += b"".join(
            i.outpoint() + b"\x00" + i.sequence.to_bytes(4, "little") for i in self.inputs
        )
        body += compact_size(len(self.outputs)) + b"".join(o.serialize() for o in self.outputs)
        version = self.version.to_bytes(4, "little")
        locktime = self.locktime.to_bytes(4, "little")
        if witnesses is None or not any(witnesses):
            return version + body + locktime
        if len(witnesses) != len(self.inputs):
            raise ValidationError("one witness stack per input", field="witnesses")
        stacks = b"".join(
            compact_size(len(stack)) + b"".join(push_bytes(item) for item in stack)
            for stack in witnesses
        )
        return version + b"\x00\x01" + body + stacks + locktime

    def txid(self) -> str:
        """The transaction id (hash of the witness-less form), as nodes display it."""
        return wire_to_txid(sha256d(self.serialize()))


class InputKind(StrEnum):
    """The spend kinds the node signs."""

    P2WPKH = "p2wpkh"
    P2TR = "p2tr"


def input_kind(script_pubkey: bytes) -> InputKind:
    """The kind of a spendable output script; ``ValidationError`` for any other script."""
    if len(script_pubkey) == 22 and script_pubkey[:2] == b"\x00\x14":
        return InputKind.P2WPKH
    if len(script_pubkey) == 34 and script_pubkey[:2] == b"\x51\x20":
        return InputKind.P2TR
    raise ValidationError("only P2WPKH and P2TR outputs can be spent", field="utxos.script_pubkey")


def is_standard_output(script_pubkey: bytes) -> bool:
    """Whether nodes relay an output to this script (the address kinds people pay to)."""
    s = script_pubkey
    if len(s) == 25 and s[:3] == b"\x76\xa9\x14" and s[23:] == b"\x88\xac":
        return True  # P2PKH
    if len(s) == 23 and s[:2] == b"\xa9\x14" and s[22] == 0x87:
        return True  # P2SH
    if len(s) >= 4 and s[1] == len(s) - 2:  # witness program: version opcode, push
        version = s[0]
        if version == 0x00:
            return len(s) in (22, 34)  # P2WPKH, P2WSH
        return 0x51 <= version <= 0x60 and 2 <= len(s) - 2 <= 40
    return False


def dust_threshold(script_pubkey: bytes) -> int:
    """Bitcoin Core's ``GetDustThreshold`` at the default dust relay fee, in satoshis.

    The cost of an output plus the input that would spend it, at 3 sat/vB: 294 for P2WPKH,
    330 for P2TR/P2WSH, 546 for P2PKH.
    """
    size = len(TxOut(script_pubkey, 0).serialize())
    is_witness = (
        len(script_pubkey) >= 4
        and script_pubkey[1] == len(script_pubkey) - 2
        and (script_pubkey[0] == 0 or 0x51 <= script_pubkey[0] <= 0x60)
    )
    size += 32 + 4 + 1 + (107 // 4 if is_witness else 107) + 4
    return size * DUST_RELAY_SAT_PER_KVB // 1000


def p2wpkh_script_code(pubkey_hash: bytes) -> bytes:
    """BIP143's length-prefixed scriptCode of a P2WPKH input (the P2PKH script of its key)."""
    if len(pubkey_hash) != 20:
        raise ValidationError("a P2WPKH key hash is 20 bytes", field="script_pubkey")
    return b"\x19\x76\xa9\x14" + pubkey_hash + b"\x88\xac"


def segwit_v0_sighash(tx: Transaction, index: int, script_code: bytes, value_sats: int) -> bytes:
    """The BIP143 signature hash of input ``index`` for ``SIGHASH_ALL``.

    Args:
        tx: The transaction being signed.
        index: The input being signed.
        script_code: The input's scriptCode, length-prefixed (:func:`p2wpkh_script_code`).
        value_sats: The value of the output this input spends (BIP143 commits to it).
    """
    _check_index(tx, index)
    txin = tx.inputs[index]
    hash_prevouts = sha256d(b"".join(i.outpoint() for i in tx.inputs))
    hash_sequence = sha256d(b"".join(i.sequence.to_bytes(4, "little") for i in tx.inputs))
    hash_outputs = sha256d(b"".join(o.serialize() for o in tx.outputs))
    preimage = (
        tx.version.to_bytes(4, "little")
        + hash_prevouts
        + hash_sequence
        + txin.outpoint()
        + script_code
        + value_sats.to_bytes(8, "little")
        + txin.sequence.to_bytes(4, "little")
        + hash_outputs
        + tx.locktime.to_bytes(4, "little")
        + SIGHASH_ALL.to_bytes(4, "little")
    )
    return sha256d(preimage)


def taproot_key_path_sighash(
    tx: Transaction, spent: Sequence[TxOut], index: int, hash_type: int = SIGHASH_DEFAULT
) -> bytes:
    """The BIP341 signature hash of input ``index`` for a key-path spend (no annex).

    Args:
        tx: The transaction being signed.
        spent: The outputs every input spends, in input order (BIP341 commits to all of
            their values and scripts, which is what makes taproot fee-safe for offline
            signers).
        index: The input being signed.
        hash_type: One of BIP341's hash types; this node signs with ``SIGHASH_DEFAULT``.
    """
    _check_index(tx, index)
    if len(spent) != len(tx.inputs):
        raise ValidationError("one spent output per input", field="spent")
    if hash_type not in _TAPROOT_HASH_TYPES:
        raise ValidationError("not a BIP341 hash type", field="hash_type")
    anyone_can_pay = bool(hash_type & SIGHASH_ANYONECANPAY)
    output_type = hash_type & 0x03 or SIGHASH_ALL  # DEFAULT commits like ALL
    msg = bytes([0x00, hash_type])  # epoch 0, hash type
    msg += tx.version.to_bytes(4, "little") + tx.locktime.to_bytes(4, "little")
    if not anyone_can_pay:
        msg += sha256(b"".join(i.outpoint() for i in tx.inputs))
        msg += sha256(b"".join(o.value_sats.to_bytes(8, "little") for o in spent))
        msg += sha256(b"".join(push_bytes(o.script_pubkey) for o in spent))
        msg += sha256(b"".join(i.sequence.to_bytes(4, "little") for i in tx.inputs))
    if output_type == SIGHASH_ALL:
        msg += sha256(b"".join(o.serialize() for o in tx.outputs))
    msg += b"\x00"  # spend_type: key path (ext_flag 0), no annex
    if anyone_can_pay:
        txin = tx.inputs[index]
        msg += txin.outpoint() + spent[index].serialize() + txin.sequence.to_bytes(4, "little")
    else:
        msg += index.to_bytes(4, "little")
    if output_type == SIGHASH_SINGLE:
        if index >= len(tx.outputs):
            raise ValidationError("SIGHASH_SINGLE without a matching output", field="hash_type")
        msg += sha256(tx.outputs[index].serialize())
    return tagged_hash("TapSighash", msg)


def _check_index(tx: Transaction, index: int) -> None:
    if not 0 <= index < len(tx.inputs):
        raise ValidationError("input index out of range", field="index")
