"""The node's own transactions on one chain: payouts and sweeps mined, confirmed, or lost.

:class:`OutgoingTracker` is a :class:`~dpgnode.services.chains.watcher.BlockObserver`: the
watcher calls it inside the command that applies a block or undoes a reorganisation, so a
payout's state, its ledger entries, events and audit records move with the chain's cursor
(a crash between blocks loses nothing and applies nothing twice). What it decides
(:mod:`dpgnode.domain.chains.outgoing`):

- a ``signed`` or ``broadcast`` payout (or sweep) whose txid is in the block becomes
  ``mined``; a rollback below its block puts it back to ``broadcast``;
- once its block is final (``reorg_limit`` blocks on top, or the chain's finalized mark) it
  is ``confirmed``: a payout's hold is captured into ``operator:chain:<ASSET>:world`` and,
  for payouts and sweeps alike, the network fee moves from the operator's
  ``operator:network_fees:<NATIVE>:fees`` account to the native asset's world account;
- a transaction that uses its inputs (or nonce) in a final block makes it ``failed``: a
  payout's hold is released; own transactions spending its outputs fail with it.

The fee must be known to confirm. Bitcoin's is recorded at signing (inputs minus outputs);
an EVM transaction's is ``gasUsed * effectiveGasPrice`` of its receipt, which only the
chain's node knows: :meth:`OutgoingTracker.refresh` reads missing fees *outside* any
command (a node may be slow), records them, and confirms what became due. The node's
worker runs it after the chain's polls, with the rebroadcast of unmined transactions
(:mod:`.rebroadcast`).

Every ledger entry is keyed by the payout or sweep (``payout-capture:<id>``,
``payout-fee:<id>``, ``payout-release:<id>``, ``sweep-fee:<id>``), so a replay posts nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dpgnode.domain.chains.blocks import ChainBlock
from dpgnode.domain.chains.outgoing import (
    OnChain,
    Standing,
    observe,
    rolled_back,
    spends_lost_output,
    standing,
)
from dpgnode.domain.chains.sweeps import Sweep
from dpgnode.domain.custody.payout import Payout
from dpgnode.domain.money import AssetKind, AssetRegistry
from dpgnode.errors import DpgError
from dpgnode.ports.chain_watch import ChainStore
from dpgnode.ports.clock import Clock
from dpgnode.ports.outgoing import OutgoingStore, OwnTxFees, PaidFee
from dpgnode.ports.uow import Tx, Writer
from dpgnode.services.chains.outgoing_effects import OutgoingEffects

_FEE_BATCH = 200


@dataclass(frozen=True, slots=True)
class OutgoingChain:
    """One chain's own transactions: which assets move on it and how final is final."""

    chain: str
    native_asset: str
    """The chain's coin: network fees are paid in it."""
    assets: tuple[str, ...]
    """Assets whose payouts move on this chain (its coin and its tokens)."""
    reorg_limit: int
    fee_from_receipt: bool = False
    """EVM: the fee is read from the receipt once mined (and forgotten on a rollback);
    Bitcoin: it is the signed transaction's own, recorded at signing."""

    @classmethod
    def of(cls, chain: str, family: str, reorg_limit: int,
           assets: AssetRegistry) -> OutgoingChain | None:
        """The chain's assets from the registry (``None``: no coin moves on ``chain``)."""
        on_chain = [a for _, a in assets.items() if a.network == chain]
        native = [a.code for a in on_chain if a.kind is AssetKind.CRYPTO]
        if not native:
            return None
        return cls(chain, native[0], tuple(sorted(a.code for a in on_chain)), reorg_limit,
                   fee_from_receipt=family == "evm")


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What one :meth:`OutgoingTracker.refresh` did."""

    fees_recorded: int = 0
    confirmed: int = 0
    lost: int = 0
    errors: tuple[str, ...] = ()
    """Fees that could not be read this time (the next refresh asks again)."""


class OutgoingTracker:
    """Follows the node's own transactions on one chain (see the module docstring)."""

    def __init__(
        self, target: OutgoingChain, store: OutgoingStore, effects: OutgoingEffects,
        cursors: ChainStore, writer: Writer, clock: Clock, fees: OwnTxFees | None = None,
    ) -> None:
        self.target = target
        self._store = store
        self._effects = effects
        self._cursors = cursors
        self._writer = writer
        self._clock = clock
        self._fees = fees

    @property
    def chain(self) -> str:
        """The chain followed."""
        return self.target.chain

    # -- the watcher's hooks (inside its commands) ---------------------------------------------

    def on_block(self, tx: Tx, chain: str, block: ChainBlock,
                 finalized_height: int | None) -> None:
        """Mark own transactions the block mines or contests, then settle what is final."""
        if chain != self.chain:
            return
        now = self._clock.now()
        for payout in self._store.payouts_on_chain_in(tx, self.target.assets):
            after = observe(_payout_state(payout), block)
            if after != _payout_state(payout):
                self._effects.payout_moved(tx, payout, after, now)
        for sweep in self._store.sweeps_on_chain_in(tx, chain):
            after = observe(sweep.on_chain, block)
            if after != sweep.on_chain:
                self._effects.sweep_moved(tx, sweep, after, now)
        self._settle(tx, block.height, finalized_height, now)

    def on_rollback(self, tx: Tx, chain: str, fork_height: int) -> None:
        """Own transactions mined (or contested) above ``fork_height`` are not any more."""
        if chain != self.chain:
            return
        now = self._clock.now()
        keep_fee = not self.target.fee_from_receipt
        for payout in self._store.payouts_on_chain_in(tx, self.target.assets):
            after = rolled_back(_payout_state(payout), fork_height)
            if after != _payout_state(payout):
                self._effects.payout_moved(tx, payout, after, now, keep_fee=keep_fee)
        for sweep in self._store.sweeps_on_chain_in(tx, chain):
            after = rolled_back(sweep.on_chain, fork_height)
            if after != sweep.on_chain:
                self._effects.sweep_moved(tx, sweep, after, now, keep_fee=keep_fee)

    # -- outside the watcher's commands --------------------------------------------------------

    def refresh(self) -> RefreshReport:
        """Read the fees of mined transactions that lack one, then settle what is due.

        Runs outside any command: each fee read from the chain is recorded by a command that
        checks the transaction is still mined in the block the receipt names. On Bitcoin
        fees are known from signing; only payouts signed before fees were recorded (schema
        0007) are read from the chain.
        """
        recorded, errors = self._read_fees()
        now = self._clock.now()

        def command(tx: Tx) -> tuple[int, int]:
            cursor = self._cursors.cursor_in(tx, self.chain)
            if cursor is None or cursor.is_paused:
                return 0, 0
            return self._settle(tx, cursor.height, None, now)

        confirmed, lost = self._writer.run(command)
        return RefreshReport(recorded, confirmed, lost, tuple(errors))

    def _read_fees(self) -> tuple[int, list[str]]:
        if self._fees is None:
            return 0, []
        recorded = 0
        errors: list[str] = []
        payouts = self._store.payouts_without_fee(self.target.assets, _FEE_BATCH)
        sweeps = self._store.sweeps_without_fee(self.chain, _FEE_BATCH)
        wanted = [*(("payout", p.id, p.txid or "") for p in payouts),
                  *(("sweep", s.id, s.txid) for s in sweeps)]
        for kind, subject, txid in wanted:
            try:
                paid = self._fees.fee_paid(self.chain, txid)
            except DpgError as exc:  # unreachable node, malformed answer: ask next time
                errors.append(f"{kind} {subject}: {exc.message}"[:300])
                continue
            if paid is not None and self._record_fee(kind, subject, paid):
                recorded += 1
        return recorded, errors

    def _record_fee(self, kind: str, subject: str, paid: PaidFee) -> bool:
        now = self._clock.now()

        def command(tx: Tx) -> bool:
            return self._effects.record_fee(tx, kind, subject, paid, now)

        return self._writer.run(command)

    # -- settling ------------------------------------------------------------------------------

    def _settle(
        self, tx: Tx, tip_height: int, finalized: int | None, now: datetime
    ) -> tuple[int, int]:
        """Confirm own transactions in final blocks and fail those beaten by final conflicts."""
        payouts = self._store.payouts_on_chain_in(tx, self.target.assets)
        sweeps = self._store.sweeps_on_chain_in(tx, self.chain)
        limit = self.target.reorg_limit
        items: list[Payout | Sweep] = [*payouts, *sweeps]
        verdicts = {_txid(i): standing(_state(i), tip_height, finalized, limit) for i in items}
        lost = _lost_with_descendants(items, verdicts)
        confirmed = failed = 0
        for payout in payouts:
            txid = _txid(payout)
            if txid in lost:
                self._effects.lose_payout(tx, payout, lost[txid], now)
                failed += 1
            elif verdicts[txid] is Standing.CONFIRMED and payout.fee_units is not None:
                self._effects.confirm_payout(tx, payout, self.target.native_asset, now)
                confirmed += 1
        for sweep in sweeps:
            if sweep.txid in lost:
                self._effects.lose_sweep(tx, sweep, lost[sweep.txid], now)
                failed += 1
            elif verdicts[sweep.txid] is Standing.CONFIRMED and sweep.fee_units is not None:
                self._effects.confirm_sweep(tx, sweep, now)
                confirmed += 1
        return confirmed, failed


def _payout_state(payout: Payout) -> OnChain:
    return OnChain(payout.txid or "", payout.spends, payout.block, payout.conflict_txid,
                   payout.conflict_height)


def _state(item: Payout | Sweep) -> OnChain:
    return _payout_state(item) if isinstance(item, Payout) else item.on_chain


def _txid(item: Payout | Sweep) -> str:
    return item.txid or ""


def _lost_with_descendants(
    items: Sequence[Payout | Sweep], verdicts: dict[str, Standing]
) -> dict[str, str]:
    """Txid -> what beat it, for every own transaction that can never be mined.

    Directly lost ones name their final conflict; an unmined one spending an output of a
    lost one names that parent (its inputs never existed on the best chain).
    """
    lost = {_txid(i): _state(i).conflict_txid or "" for i in items
            if verdicts[_txid(i)] is Standing.LOST}
    changed = True
    while changed:
        changed = False
        for item in items:
            txid = _txid(item)
            if txid in lost or verdicts[txid] in (Standing.MINED, Standing.CONFIRMED):
                continue
            parent = spends_lost_output(_state(item), set(lost))
            if parent is not None:
                lost[txid] = parent
                changed = True
    return lost
