"""Reading back what a signed raw transaction commits to: its inputs, its sender and nonce.

The adapters decide from the signed bytes themselves, never from side records, which
outputs and nonces a transaction uses (see ``reserved`` and ``broadcast``). Bytes that do not
parse were recorded by us, so that is an ``IntegrityError``, not bad input.
"""

from __future__ import annotations

from dataclasses import dataclass

from bitcoin.core import CTransaction, b2lx  # type: ignore[import-untyped]
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from hexbytes import HexBytes

from dpgnode.errors import IntegrityError


@dataclass(frozen=True, slots=True)
class EvmTxFields:
    """Who sends a signed EVM transaction, with which nonce, on which chain."""

    chain_id: int
    nonce: int
    sender: bytes
    """The 20-byte address the signature recovers to."""

    @property
    def sender_hex(self) -> str:
        """``0x`` + 40 lower-case hex digits."""
        return "0x" + self.sender.hex()


def bitcoin_outpoints(raw_hex: str) -> list[tuple[str, int]]:
    """``(txid, vout)`` of every input of a raw Bitcoin transaction."""
    try:
        tx = CTransaction.deserialize(bytes.fromhex(raw_hex))
    except Exception as exc:  # python-bitcoinlib raises assorted types on bad bytes
        raise IntegrityError("a recorded raw Bitcoin transaction does not parse") from exc
    return [(b2lx(txin.prevout.hash), int(txin.prevout.n)) for txin in tx.vin]


def evm_fields(raw_hex: str) -> EvmTxFields:
    """Chain id, nonce and (recovered) sender of a signed typed EVM transaction."""
    raw = bytes.fromhex(raw_hex.removeprefix("0x"))
    try:
        fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
        sender = Account.recover_transaction(raw)
    except Exception as exc:  # eth-account raises assorted types on bad bytes
        raise IntegrityError("a recorded raw EVM transaction does not parse") from exc
    return EvmTxFields(int(fields["chainId"]), int(fields["nonce"]), bytes.fromhex(sender[2:]))
