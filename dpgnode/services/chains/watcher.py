"""Following one chain: blocks, reorganisations, the mempool, and the payments they carry.

Entry points (one :class:`ChainWatcher` per chain, driven by the node's worker loop or a test):

- ``poll()`` does one step: loads newly issued addresses into the client's watch set, follows
  the chain from the cursor towards the node's tip (at most ``max_blocks_per_poll`` blocks),
  undoing a reorganisation when a block no longer links, credits payments that reached the
  confirmation policy, then reads the mempool; returns a :class:`PollReport`;
- ``rescan(from_height)`` moves the cursor back so the next polls read those blocks again
  (payments found are added; those already known keep their state);
- ``resume(accept_reorg=...)`` clears an incident after an operator looked at it.

Every block is one writer command: its payments, the ledger entries crediting or reversing
them, their outbox events and the cursor commit together, so a crash between blocks loses
nothing and replays nothing. The command checks the cursor it builds on, so two watchers of
one chain (two processes on one database) cannot both apply a block.

A reorganisation deeper than the policy's ``reorg_limit`` is not undone: the chain is paused,
an incident is recorded and announced (``chain.incident``), and ``poll`` does nothing until an
operator resumes it (RELIABILITY R9).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from dpgnode.domain.chains.blocks import BlockRef, ChainBlock, ChainTx, MempoolView, Transfer
from dpgnode.domain.chains.cursor import ChainCursor, Incident, IncidentKind
from dpgnode.domain.chains.payments import (
    ConfirmationPolicy,
    Payment,
    PaymentStatus,
    WatchedAddress,
    beaten,
    credit_draft,
    credit_key,
    credited,
    descendants,
    mined,
    new_payment,
    payment_payload,
    restored,
    reversal_key,
    unaccounted,
    unmined,
)
from dpgnode.domain.events import DomainEvent
from dpgnode.domain.ledger import reversal_draft
from dpgnode.errors import ConflictError, IntegrityError
from dpgnode.ports.chain_watch import ChainStore
from dpgnode.ports.chains import ChainClient
from dpgnode.ports.clock import Clock
from dpgnode.ports.custody import AddressPool
from dpgnode.ports.uow import Tx, Writer
from dpgnode.services.ledger import post_entry

_ADDRESS_PAGE = 20_000
_MEMPOOL_CANDIDATES = (PaymentStatus.PENDING, PaymentStatus.UNACCOUNTED)


@dataclass(frozen=True, slots=True)
class WatchTarget:
    """One chain to follow and the rules that apply to it."""

    chain: str
    """The chain's name (``bitcoin``, ``ethereum``): the cursor's and the payments' key."""
    family: str
    """``bitcoin`` or ``evm``: which key accounts' addresses are watched."""
    network: str
    """Bitcoin network of the watched key accounts (``regtest``); unused for EVM."""
    policy: ConfirmationPolicy
    start_height: int | None = None
    """Where a watcher without a cursor starts; ``None``: the tip at its first poll (addresses
    issued later cannot have been paid earlier)."""
    max_blocks_per_poll: int = 200
    keep_blocks: int = 0
    """Blocks remembered for finding forks; 0: ``max(100, 2 * reorg_limit + 10)``."""

    @property
    def remembered(self) -> int:
        """How many recent blocks the watcher keeps to find where a fork started."""
        return self.keep_blocks or max(100, 2 * self.policy.reorg_limit + 10)


class BlockObserver(Protocol):
    """Something else that follows the chain inside the watcher's commands (payouts, sweeps).

    Called in the same transaction as the block or rollback, so its state moves with the
    cursor: ``on_block`` after the block's payments, with the height the policy counts from;
    ``on_rollback`` after the payments above ``fork_height`` were undone.
    """

    def on_block(self, tx: Tx, chain: str, block: ChainBlock,
                 finalized_height: int | None) -> None:
        """A block joined the best chain."""
        ...

    def on_rollback(self, tx: Tx, chain: str, fork_height: int) -> None:
        """Blocks above ``fork_height`` left the best chain."""
        ...


@dataclass(frozen=True, slots=True)
class PollReport:
    """What one poll did and where the chain stands."""

    chain: str
    node_height: int
    our_height: int
    applied: int = 0
    """Blocks applied during the poll."""
    reorg_depth: int = 0
    """Depth of the deepest reorganisation undone during the poll (0: none)."""
    mempool_size: int = 0
    """Unconfirmed transactions the node reported."""
    paused: str = ""
    """The open incident's text when the chain is paused."""

    @property
    def lag(self) -> int:
        """Blocks between the node's tip and the last one processed."""
        return max(0, self.node_height - self.our_height)


class ChainWatcher:
    """Follows one chain (see the module docstring)."""

    def __init__(
        self, target: WatchTarget, client: ChainClient, store: ChainStore,
        addresses: AddressPool, writer: Writer, clock: Clock,
        observers: Sequence[BlockObserver] = (),
    ) -> None:
        self.target = target
        self._client = client
        self._store = store
        self._addresses = addresses
        self._writer = writer
        self._clock = clock
        self._observers = tuple(observers)
        self._last_address_id = 0
        self._accept_deep_reorg = False
        self._lock = threading.Lock()

    @property
    def chain(self) -> str:
        """The chain this watcher follows."""
        return self.target.chain

    # -- the poll ---------------------------------------------------------------------------

    def poll(self) -> PollReport:
        """One step of following the chain (see the module docstring).

        Raises:
            UnavailableError: the node could not be reached or answered malformed data;
                nothing was half-applied, the next poll resumes where this one stopped.
            IntegrityError: the node contradicted itself.
        """
        with self._lock:
            return self._poll()

    def _poll(self) -> PollReport:
        cursor = self._store.cursor(self.chain)
        if cursor is not None and cursor.is_paused:
            return PollReport(self.chain, cursor.height, cursor.height, paused=cursor.paused)
        self.sync_addresses()
        tip = self._client.tip()
        if cursor is None:
            cursor = self._start(tip)
        finalized = self._client.finalized_height() if self.target.policy.finalized else None
        applied = 0
        deepest = 0
        budget = self.target.max_blocks_per_poll
        for _ in range(2 * budget + 16):
            if cursor.hash == tip.hash or applied >= budget:
                break
            block = None
            if cursor.height < tip.height:
                block = self._client.block(cursor.height + 1)
            if block is not None and block.prev_hash == cursor.hash:
                cursor = self._apply_block(cursor, block, finalized)
                applied += 1
                continue
            if block is None and self._client.block_hash(cursor.height) == cursor.hash:
                tip = self._client.tip()  # the node's tip moved back under us: ask again
                if tip.height <= cursor.height:
                    break
                continue
            outcome = self._reorganise(cursor)
            if outcome is None:
                paused = self._store.cursor(self.chain)
                text = paused.paused if paused is not None else "paused"
                return PollReport(self.chain, tip.height, cursor.height, applied,
                                  paused=text)
            cursor, depth = outcome
            deepest = max(deepest, depth)
            tip = self._client.tip()
        if self.target.policy.finalized:
            self._confirm_only(cursor, finalized)
        view = self._client.mempool()
        # A transaction missing from the mempool counts as gone only if no block came in
        # between: one mined after the tip was read is in neither place this poll.
        gone_means_lost = view.complete and self._client.tip().hash == cursor.hash
        self._apply_mempool(cursor, view, gone_means_lost=gone_means_lost)
        return PollReport(self.chain, tip.height, cursor.height, applied, deepest,
                          len(view.txids))

    def sync_addresses(self) -> int:
        """Hand addresses issued since the last call to the client; how many were new."""
        added = 0
        while True:
            page = self._store.watched_addresses(
                self.target.family, self.target.network, self._last_address_id, _ADDRESS_PAGE)
            if not page:
                return added
            self._client.watch(a.address for a in page)
            self._last_address_id = page[-1].id
            added += len(page)

    # -- starting, rescanning, resuming ------------------------------------------------------

    def _start(self, tip: BlockRef) -> ChainCursor:
        start = self.target.start_height
        if start is None or start > tip.height:
            anchor = tip
        else:
            height = max(start - 1, 0)
            block_hash = self._client.block_hash(height)
            if block_hash is None:
                raise ConflictError(f"{self.chain}: no block at height {height}")
            anchor = BlockRef(height, block_hash)
        return self._set_cursor(anchor, only_if_missing=True)

    def rescan(self, from_height: int) -> ChainCursor:
        """Read the chain again from ``from_height`` at the next polls.

        Known payments keep their state (a credited payment in the same block is not credited
        again); payments to addresses the watcher did not know then are found and credited.
        """
        if from_height < 0:
            raise ConflictError("rescan height must not be negative")
        cursor = self._store.cursor(self.chain)
        if cursor is not None and from_height > cursor.height + 1:
            raise ConflictError(
                f"{self.chain}: cannot rescan from {from_height}, the watcher is at "
                f"{cursor.height}", details={"field": "from_height"})
        height = max(from_height - 1, 0)
        block_hash = self._client.block_hash(height)
        if block_hash is None:
            raise ConflictError(f"{self.chain}: the node has no block at height {height}")
        self.sync_addresses()
        return self._set_cursor(BlockRef(height, block_hash), only_if_missing=False)

    def resume(self, *, accept_reorg: bool = False) -> ChainCursor | None:
        """Close the chain's incidents and go on.

        ``accept_reorg`` lets the next poll undo a reorganisation deeper than the limit: the
        operator decided the new chain stands.
        """
        now = self._clock.now()

        def command(tx: Tx) -> ChainCursor | None:
            cursor = self._store.cursor_in(tx, self.chain)
            self._store.resolve_incidents(tx, self.chain, now)
            if cursor is None:
                return None
            resumed = replace(cursor, paused="", updated_at=now)
            self._store.save_cursor(tx, resumed)
            tx.emit(DomainEvent("chain.resumed", f"chain:{self.chain}",
                                {"chain": self.chain, "height": cursor.height,
                                 "acceptReorg": accept_reorg}))
            return resumed

        resumed = self._writer.run(command)
        self._accept_deep_reorg = accept_reorg
        return resumed

    def _set_cursor(self, anchor: BlockRef, *, only_if_missing: bool) -> ChainCursor:
        now = self._clock.now()

        def command(tx: Tx) -> ChainCursor:
            existing = self._store.cursor_in(tx, self.chain)
            if existing is not None and only_if_missing:
                return existing
            cursor = ChainCursor(self.chain, anchor.height, anchor.hash, now,
                                 existing.paused if existing is not None else "")
            self._store.forget_blocks(tx, self.chain, above=anchor.height - 1)
            self._store.add_block(tx, self.chain, anchor)
            self._store.save_cursor(tx, cursor)
            return cursor

        return self._writer.run(command)

    # -- blocks ------------------------------------------------------------------------------

    def _apply_block(
        self, cursor: ChainCursor, block: ChainBlock, finalized: int | None
    ) -> ChainCursor:
        now = self._clock.now()

        def command(tx: Tx) -> ChainCursor:
            self._require_cursor(tx, cursor)
            ref = block.ref
            self._record_transfers(tx, block.transactions, now, ref)
            self._settle_conflicts(tx, block.spent, now, conflict_height=block.height)
            self._store.add_block(tx, self.chain, ref)
            self._store.forget_blocks(tx, self.chain,
                                      below=block.height - self.target.remembered)
            moved = ChainCursor(self.chain, block.height, block.hash, now)
            self._store.save_cursor(tx, moved)
            self._credit_due(tx, block.height, finalized, now)
            for observer in self._observers:
                observer.on_block(tx, self.chain, block, finalized)
            return moved

        return self._writer.run(command)

    def _confirm_only(self, cursor: ChainCursor, finalized: int | None) -> None:
        """Credit what the chain's finality mark reached without a new block."""
        if finalized is None:
            return
        now = self._clock.now()

        def command(tx: Tx) -> None:
            current = self._store.cursor_in(tx, self.chain)
            if current is None or current.hash != cursor.hash:
                return
            self._credit_due(tx, cursor.height, finalized, now)

        self._writer.run(command)

    def _require_cursor(self, tx: Tx, expected: ChainCursor) -> None:
        current = self._store.cursor_in(tx, self.chain)
        if current is None or current.hash != expected.hash or current.height != expected.height:
            raise ConflictError(f"{self.chain}: another watcher moved the cursor; polling again")
        if current.is_paused:
            raise ConflictError(f"{self.chain}: the chain is paused: {current.paused}")

    def _record_transfers(
        self, tx: Tx, transactions: Iterable[ChainTx], now: datetime, block: BlockRef | None
    ) -> None:
        paying = [t for t in transactions if t.transfers]
        if not paying:
            return
        own = self._store.own_txids_in(tx, [t.txid for t in paying])
        issued = self._store.addresses_in(
            tx, {transfer.address for t in paying for transfer in t.transfers})
        for chain_tx in paying:
            if chain_tx.txid in own:
                continue  # change of the node's own payouts and sweeps is not a deposit
            for transfer in chain_tx.transfers:
                watched = issued.get(transfer.address)
                if watched is None:
                    continue
                self._record_transfer(tx, chain_tx, transfer, watched, now, block)

    def _record_transfer(
        self, tx: Tx, chain_tx: ChainTx, transfer: Transfer, watched: WatchedAddress,
        now: datetime, block: BlockRef | None,
    ) -> None:
        existing = self._store.payment_in(tx, self.chain, transfer.key)
        if existing is None:
            payment = new_payment(self.chain, transfer, chain_tx, watched, now, block)
            self._store.save_payment(tx, payment)
            self._emit(tx, "chain.payment_seen", payment)
            self._mark_used(tx, payment.address, now)
            return
        if block is None or existing.block == block:
            return
        if existing.status is PaymentStatus.CREDITED:
            # Mined in another block while still credited for the first one: the rollback that
            # should have come first did not. Never credit twice.
            raise IntegrityError(
                f"{self.chain}: payment {existing.key} is credited in block "
                f"{existing.block} and seen again in {block}")
        payment = mined(existing, block, now)
        self._store.save_payment(tx, payment)
        self._emit(tx, "chain.payment_mined", payment)

    def _settle_conflicts(
        self, tx: Tx, spent: Mapping[str, str], now: datetime, *, conflict_height: int | None,
        present: frozenset[str] | None = None,
    ) -> None:
        """Mark payments that lost to a conflicting transaction, and their descendants.

        With a block (``conflict_height`` set) conflicts become final until a rollback removes
        that block; with the mempool (``None``) they are re-evaluated each time, so a payment
        whose replacement left the mempool is restored. ``present`` (a complete mempool) also
        marks payments whose transaction is gone from it without a visible conflict: evicted,
        or the child of a replaced parent the node never tracked. They stop counting like a
        replaced payment, and come back if the transaction is seen again.
        """
        in_block = conflict_height is not None
        rows = self._store.payments_in(tx, self.chain, _MEMPOOL_CANDIDATES)
        settled = {p.key for p in rows
                   if p.status is PaymentStatus.UNACCOUNTED and p.conflict_height is not None}
        candidates = [p for p in rows if p.key not in settled]
        if not candidates:
            return
        direct = beaten(candidates, spent, present)
        # Losses mined in a block (now or before) are final until a rollback; with a block
        # in hand, losses to mempool transactions stay provisional and so do their heirs.
        final_lost = {p.txid for p in rows if p.key in direct or p.key in settled}
        rest = [p for p in candidates if p.key not in direct]
        inherited = descendants(rest, final_lost)
        provisional: dict[str, str] = {}
        if in_block:
            mempool_lost = {p.txid for p in rest if p.status is PaymentStatus.UNACCOUNTED
                            and p.key not in inherited}
            provisional = descendants([p for p in rest if p.key not in inherited],
                                      mempool_lost)
        for payment in candidates:
            other = direct.get(payment.key) or inherited.get(payment.key)
            height = conflict_height
            if other is None and payment.key in provisional:
                other, height = provisional[payment.key], None
            if other is not None:
                if (payment.status is PaymentStatus.UNACCOUNTED
                        and payment.conflict_txid == other
                        and payment.conflict_height == height):
                    continue
                if in_block and height is None and payment.status is PaymentStatus.UNACCOUNTED:
                    continue  # lost to the mempool before; the mempool pass re-checks it
                lost_payment = unaccounted(payment, other, now, height)
                self._store.save_payment(tx, lost_payment)
                if payment.status is not PaymentStatus.UNACCOUNTED:
                    self._emit(tx, "chain.payment_unaccounted", lost_payment)
            elif not in_block and payment.status is PaymentStatus.UNACCOUNTED:
                back = restored(payment, now)
                self._store.save_payment(tx, back)
                self._emit(tx, "chain.payment_restored", back)

    def _credit_due(self, tx: Tx, height: int, finalized: int | None, now: datetime) -> None:
        policy = self.target.policy
        for payment in self._store.payments_in(tx, self.chain, (PaymentStatus.CONFIRMING,)):
            assert payment.block is not None
            if policy.is_final(payment.block.height, height, finalized):
                done = self._credit(tx, payment, now)
                self._store.save_payment(tx, done)
                self._emit(tx, "chain.payment_credited", done, our_height=height)

    def _credit(self, tx: Tx, payment: Payment, now: datetime) -> Payment:
        assert payment.block is not None
        generation = 0
        while True:
            key = credit_key(self.chain, payment.key, payment.block.hash, generation)
            found = tx.entry_by_key(key)
            if found is None or tx.reversal_of(found[0].id) is None:
                break
            generation += 1
        done = credited(payment, key, now)
        post_entry(tx, credit_draft(done))
        return done

    # -- reorganisations ----------------------------------------------------------------------

    def _reorganise(self, cursor: ChainCursor) -> tuple[ChainCursor, int] | None:
        """Undo blocks that left the best chain.

        Returns the new cursor and the depth, or ``None`` when the chain was paused instead.
        """
        remembered = self._store.blocks(self.chain, cursor.height - self.target.remembered - 1)
        fork: BlockRef | None = None
        for height in sorted(remembered, reverse=True):
            if height > cursor.height:
                continue
            if self._client.block_hash(height) == remembered[height]:
                fork = BlockRef(height, remembered[height])
                break
        if fork is None:
            self._pause(cursor, IncidentKind.LOST_HISTORY,
                        f"{self.chain}: none of the last {len(remembered)} blocks the watcher "
                        "processed is in the node's chain (another network, or a reorg deeper "
                        "than the blocks remembered)", {"height": str(cursor.height)})
            return None
        depth = cursor.height - fork.height
        if depth > self.target.policy.reorg_limit and not self._accept_deep_reorg:
            self._pause(cursor, IncidentKind.DEEP_REORG,
                        f"{self.chain}: reorganisation of depth {depth} exceeds the limit of "
                        f"{self.target.policy.reorg_limit}; settled payments were not "
                        "reversed. Check the node, then run `dpg chain resume "
                        f"{self.chain} --accept-reorg` to follow the new chain",
                        {"depth": str(depth), "fork_height": str(fork.height),
                         "fork_hash": fork.hash, "our_height": str(cursor.height),
                         "our_hash": cursor.hash})
            return None
        rolled = self._rollback(cursor, fork, depth)
        self._accept_deep_reorg = False
        return rolled, depth

    def _rollback(self, cursor: ChainCursor, fork: BlockRef, depth: int) -> ChainCursor:
        now = self._clock.now()

        def command(tx: Tx) -> ChainCursor:
            self._require_cursor(tx, cursor)
            dropped = self._store.payments_in(
                tx, self.chain, (PaymentStatus.CONFIRMING, PaymentStatus.CREDITED),
                mined_above=fork.height)
            for payment in dropped:
                if payment.status is PaymentStatus.CREDITED:
                    self._reverse_credit(tx, payment)
                back = unmined(payment, now)
                self._store.save_payment(tx, back)
                kind = ("chain.payment_reverted" if payment.status is PaymentStatus.CREDITED
                        else "chain.payment_unmined")
                self._emit(tx, kind, back)
            for payment in self._store.payments_in(tx, self.chain,
                                                   (PaymentStatus.UNACCOUNTED,)):
                if payment.conflict_height is not None and payment.conflict_height > fork.height:
                    back = restored(payment, now)
                    self._store.save_payment(tx, back)
                    self._emit(tx, "chain.payment_restored", back)
            self._store.forget_blocks(tx, self.chain, above=fork.height)
            moved = ChainCursor(self.chain, fork.height, fork.hash, now)
            self._store.save_cursor(tx, moved)
            for observer in self._observers:
                observer.on_rollback(tx, self.chain, fork.height)
            tx.emit(DomainEvent("chain.reorg", f"chain:{self.chain}", {
                "chain": self.chain, "depth": depth, "forkHeight": fork.height,
                "forkHash": fork.hash, "droppedTip": cursor.hash,
                "reverted": sum(p.status is PaymentStatus.CREDITED for p in dropped),
            }))
            return moved

        return self._writer.run(command)

    def _reverse_credit(self, tx: Tx, payment: Payment) -> None:
        assert payment.credit_key is not None
        found = tx.entry_by_key(payment.credit_key)
        if found is None:
            raise IntegrityError(f"{self.chain}: credit {payment.credit_key} is missing")
        entry = found[0]
        if tx.reversal_of(entry.id) is None:
            post_entry(tx, reversal_draft(entry, reversal_key(payment.credit_key),
                                          memo=f"{self.chain} reorganisation: {payment.key}"))

    def _pause(self, cursor: ChainCursor, kind: IncidentKind, message: str,
               details: dict[str, str]) -> None:
        now = self._clock.now()

        def command(tx: Tx) -> None:
            current = self._store.cursor_in(tx, self.chain)
            if current is None or current.is_paused:
                return
            incident = Incident(self.chain, kind, message, details, now)
            incident_id = self._store.add_incident(tx, incident)
            self._store.save_cursor(tx, replace(current, paused=message, updated_at=now))
            tx.emit(DomainEvent("chain.incident", f"chain:{self.chain}", {
                "chain": self.chain, "incidentId": incident_id, "kind": str(kind),
                "message": message, **details,
            }))

        self._writer.run(command)

    # -- the mempool ----------------------------------------------------------------------------

    def _apply_mempool(self, cursor: ChainCursor, view: MempoolView, *,
                       gone_means_lost: bool) -> None:
        now = self._clock.now()
        paying = [t for t in view.transactions if t.transfers]
        if not paying and not self._has_open_payments():
            return  # nothing to record or re-evaluate: no writer command for an idle chain

        def command(tx: Tx) -> None:
            current = self._store.cursor_in(tx, self.chain)
            if current is None or current.hash != cursor.hash or current.is_paused:
                return  # the chain moved on; the next poll reads the mempool again
            self._record_transfers(tx, paying, now, None)
            self._settle_conflicts(tx, view.spent, now, conflict_height=None,
                                   present=view.txids if gone_means_lost else None)

        self._writer.run(command)

    def _has_open_payments(self) -> bool:
        """Whether a pending or unaccounted payment could change with the mempool."""
        return any(self._store.payments(self.chain, status=status, limit=1)
                   for status in _MEMPOOL_CANDIDATES)

    # -- helpers ----------------------------------------------------------------------------------

    def _mark_used(self, tx: Tx, address: str, now: datetime) -> None:
        marked = self._addresses.mark_used(tx, address, now)
        if marked is not None and marked.changed:
            tx.emit(DomainEvent(
                "custody.address_used", f"key_account:{marked.address.account_id}",
                {"accountId": marked.address.account_id, "address": address,
                 "branch": marked.address.branch, "index": marked.address.index},
            ))

    def _emit(self, tx: Tx, kind: str, payment: Payment, *, our_height: int | None = None) -> None:
        tx.emit(DomainEvent(kind, f"chain:{self.chain}", payment_payload(payment, our_height)))
