"""The node's own transactions on chain (payouts, sweeps, gas top-ups): mined, final, or lost.

The watcher credits what arrives; this module decides what became of what the node sent.
An own transaction is followed by its txid and its *conflict keys* (the outpoints it spends;
on EVM chains ``0xsender:nonce``), exactly as :mod:`.blocks` defines them for payments:

- it is *mined* while a best-chain block lists its txid, and *unmined* again when a
  reorganisation drops that block;
- another transaction in a block that uses one of its conflict keys is a *conflict*: this
  transaction can never be mined beside it; the conflict is forgotten if its block is
  dropped;
- a block is *final* once ``reorg_limit`` blocks are built on it (confirmations greater than
  the limit), or once it is at or below the chain's own finalized mark: undoing it would
  take a reorganisation deeper than the watcher undoes by itself, which is an incident
  that pauses the chain (RELIABILITY R9). A mined transaction in a final block is
  *confirmed*; one whose conflict is in a final block is *lost*.

Ledger effects (the services post them when the state becomes final):

- a confirmed payout's hold is captured into the chain's world account
  (``operator:chain:<ASSET>:world``: the value left the node);
- the network fee any own transaction paid, in the chain's native asset, moves from the
  operator's network-fee expense account ``operator:network_fees:<NATIVE>:fees`` to the same
  world account. That account only ever decreases: its balance is minus the fees the node
  has paid on that chain, and it may go negative (an expense, not a wallet).

Sweeps and gas top-ups move value between the node's own addresses: only their fee reaches
the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from dpgnode.domain.chains.blocks import BlockRef, ChainBlock
from dpgnode.domain.chains.payments import confirmations, world_account
from dpgnode.domain.ledger import AccountKind, AccountRef, EntryDraft, OwnerType, Posting
from dpgnode.errors import ValidationError

NETWORK_FEES_OWNER = "network_fees"
"""Owner id of the operator's network-fee expense accounts."""


class Standing(StrEnum):
    """What the chain says about an own transaction at the current tip."""

    UNMINED = "unmined"
    """Neither mined nor beaten: waiting in (or dropped from) mempools."""
    MINED = "mined"
    """In a best-chain block that is not final yet."""
    CONFIRMED = "confirmed"
    """In a final block."""
    CONTESTED = "contested"
    """A conflicting transaction is in a block that is not final yet."""
    LOST = "lost"
    """A conflicting transaction is in a final block: this one can never be mined."""


@dataclass(frozen=True, slots=True)
class OnChain:
    """Where an own transaction stands: its block, or the block of what beat it."""

    txid: str
    spends: tuple[str, ...] = ()
    block: BlockRef | None = None
    conflict_txid: str | None = None
    conflict_height: int | None = None


def observe(state: OnChain, block: ChainBlock) -> OnChain:
    """``state`` after ``block`` joined the best chain.

    A mined transaction stays mined (a conflict in a later block is impossible on a
    consistent chain, and the watcher's rollback runs before a new branch is applied).
    """
    if state.block is not None:
        return state
    if state.txid in block.txids:
        return replace(state, block=block.ref, conflict_txid=None, conflict_height=None)
    if state.conflict_txid is not None:
        return state
    for key in state.spends:
        other = block.spent.get(key)
        if other is not None and other != state.txid:
            return replace(state, conflict_txid=other, conflict_height=block.height)
    return state


def rolled_back(state: OnChain, fork_height: int) -> OnChain:
    """``state`` after the blocks above ``fork_height`` left the best chain."""
    if state.block is not None and state.block.height > fork_height:
        state = replace(state, block=None)
    if state.conflict_height is not None and state.conflict_height > fork_height:
        state = replace(state, conflict_txid=None, conflict_height=None)
    return state


def is_final(height: int, tip_height: int, finalized_height: int | None, reorg_limit: int) -> bool:
    """Whether a block at ``height`` can no longer leave the chain without an incident."""
    if reorg_limit < 1:
        raise ValidationError("reorg_limit must be at least 1", field="reorg_limit")
    if finalized_height is not None and height <= finalized_height:
        return True
    return confirmations(height, tip_height) > reorg_limit


def standing(
    state: OnChain, tip_height: int, finalized_height: int | None, reorg_limit: int
) -> Standing:
    """What ``state`` amounts to with the best chain at ``tip_height``."""
    if state.block is not None:
        final = is_final(state.block.height, tip_height, finalized_height, reorg_limit)
        return Standing.CONFIRMED if final else Standing.MINED
    if state.conflict_height is not None:
        final = is_final(state.conflict_height, tip_height, finalized_height, reorg_limit)
        return Standing.LOST if final else Standing.CONTESTED
    return Standing.UNMINED


def spends_lost_output(state: OnChain, lost_txids: set[str]) -> str | None:
    """The lost transaction whose output ``state`` spends (its outputs never existed), if any.

    Only Bitcoin conflict keys (``txid:vout``) name outputs; EVM keys never match a txid.
    """
    for key in state.spends:
        parent = key.rpartition(":")[0]
        if parent in lost_txids:
            return parent
    return None


# -- fees ---------------------------------------------------------------------------------


def bitcoin_fee(input_values: Sequence[int], output_values: Sequence[int]) -> int:
    """What a Bitcoin transaction pays its miner: inputs minus outputs, in satoshis."""
    if not input_values or not output_values:
        raise ValidationError("a transaction has inputs and outputs", field="fee")
    if any(type(v) is not int or v < 0 for v in (*input_values, *output_values)):
        raise ValidationError("values are whole non-negative satoshis", field="fee")
    fee = sum(input_values) - sum(output_values)
    if fee < 0:
        raise ValidationError("outputs exceed inputs", field="fee")
    return fee


def evm_fee(gas_used: int, effective_gas_price: int) -> int:
    """What an EVM transaction paid: ``gasUsed * effectiveGasPrice`` of its receipt, in wei.

    Covers the burnt base fee and the priority fee; an L1 data fee some rollups add is
    not part of it.
    """
    if type(gas_used) is not int or type(effective_gas_price) is not int:
        raise ValidationError("gas and its price are whole numbers", field="fee")
    if gas_used <= 0 or effective_gas_price < 0:
        raise ValidationError("a mined transaction used gas at a non-negative price",
                              field="fee")
    return gas_used * effective_gas_price


def network_fee_account(native_asset: str) -> AccountRef:
    """The operator's expense account of network fees paid in ``native_asset``."""
    return AccountRef(OwnerType.OPERATOR, NETWORK_FEES_OWNER, native_asset, AccountKind.FEES)


def fee_draft(
    key: str, native_asset: str, units: int, memo: str, metadata: dict[str, str]
) -> EntryDraft | None:
    """The entry booking a network fee of ``units`` (``None`` for a fee of zero)."""
    if type(units) is not int or units < 0:
        raise ValidationError("a network fee is a whole non-negative amount", field="fee")
    if units == 0:
        return None
    return EntryDraft(
        idempotency_key=key,
        postings=(Posting(network_fee_account(native_asset), -units),
                  Posting(world_account(native_asset), units)),
        memo=memo,
        metadata=metadata,
    )


# -- sweep amounts ------------------------------------------------------------------------


def native_sweep_units(balance: int, gas_limit: int, max_fee_per_gas: int) -> int:
    """Wei an address can send of its ``balance``, keeping back the most its transfer costs.

    0: nothing worth sending. EIP-1559 charges at most ``max_fee_per_gas`` per gas; what
    the block's base fee leaves unspent stays at the address as dust.
    """
    _check_gas(gas_limit, max_fee_per_gas)
    if type(balance) is not int or balance < 0:
        raise ValidationError("a balance is a whole non-negative amount", field="balance")
    return max(0, balance - gas_limit * max_fee_per_gas)


def gas_top_up(native_balance: int, gas_limit: int, max_fee_per_gas: int) -> int:
    """Wei to send to an address so it can pay for a transaction of ``gas_limit`` gas."""
    _check_gas(gas_limit, max_fee_per_gas)
    if type(native_balance) is not int or native_balance < 0:
        raise ValidationError("a balance is a whole non-negative amount", field="balance")
    return max(0, gas_limit * max_fee_per_gas - native_balance)


def _check_gas(gas_limit: int, max_fee_per_gas: int) -> None:
    if type(gas_limit) is not int or gas_limit <= 0:
        raise ValidationError("gas limit must be positive", field="gas")
    if type(max_fee_per_gas) is not int or max_fee_per_gas <= 0:
        raise ValidationError("max fee per gas must be positive", field="max_fee_per_gas")
