"""R1: the real LedgerService on a real database, checked step by step against a pure model.

A Hypothesis ``RuleBasedStateMachine`` drives deposits, transfers, trades with fees,
conversions against operator inventory, holds (reserve / capture / release), reversals,
replays with the same and with a different body, and overdrafts; the reference model is a
dict of balances plus a dict of holds. After every step: Σ postings per asset = 0, every
balance equals the model, no account that forbids overdraft is negative, the open holds
equal the model's, and ``verify_ledger`` (hash chain included) passes.

Push: 100 examples x 50 steps on SQLite and on PostgreSQL, each run as two shards of 50
examples so pytest-xdist can spread them (one database per shard, emptied between
examples). Nightly: ``pytest -m slow`` with ``DPG_R1_EXAMPLES`` / ``DPG_R1_STEPS``
(defaults 2,000 x 200). Hypothesis prints the failing steps and a ``@reproduce_failure``
blob; the run's seed can be pinned with ``--hypothesis-seed``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from dpgnode.adapters.storage.queries import SqlQueries
from dpgnode.domain.hold import Hold
from dpgnode.domain.ledger import (
    Account,
    AccountKind,
    AccountRef,
    EntryDraft,
    OwnerType,
    Posting,
)
from dpgnode.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    InsufficientFundsError,
    ValidationError,
)
from dpgnode.node import Node
from dpgnode.services.verification import verify_ledger
from tests.conftest import wipe

pytestmark = pytest.mark.integration

OWNERS = (
    (OwnerType.USER, "u1"),
    (OwnerType.USER, "u2"),
    (OwnerType.USER, "u3"),
    (OwnerType.STORE, "st1"),
)
# Largest single deposit per asset: ETH goes to 10**30 wei, far beyond 64 bits.
CAPS = {"BTC": 21 * 10**14, "ETH": 10**30, "USDT-ETH": 10**15}
ASSETS = tuple(CAPS)
PAIRS = (("BTC", "ETH"), ("ETH", "USDT-ETH"), ("BTC", "USDT-ETH"))


def _ref(owner: tuple[OwnerType, str], asset: str, kind: AccountKind) -> AccountRef:
    return AccountRef(owner[0], owner[1], asset, kind)


def _operator(asset: str, kind: AccountKind) -> AccountRef:
    return AccountRef(OwnerType.OPERATOR, "op", asset, kind)


def _postings(*legs: tuple[AccountRef, int]) -> tuple[Posting, ...]:
    """Postings of the non-zero legs (a fee of zero is no posting at all)."""
    return tuple(Posting(ref, units) for ref, units in legs if units != 0)


class SeenQueries(SqlQueries):
    """The node's read side, keeping what verification read so the model check reuses it.

    Saves two queries per step: the invariant runs after every one of 5,000 steps.
    Bound to one connection, so all of a check's reads see the same state.
    """

    seen_accounts: Sequence[Account] = ()
    seen_open_holds: Sequence[Hold] = ()

    def accounts(
        self, owner_type: str | None = None, owner_id: str | None = None, asset: str | None = None
    ) -> Sequence[Account]:
        found = super().accounts(owner_type, owner_id, asset)
        if owner_type is owner_id is asset is None:
            self.seen_accounts = found
        return found

    def open_holds(self) -> Sequence[Hold]:
        self.seen_open_holds = super().open_holds()
        return self.seen_open_holds


@dataclass
class ModelHold:
    id: str
    account: AccountRef
    amount: int
    captured: int = 0
    released: int = 0

    @property
    def remaining(self) -> int:
        return self.amount - self.captured - self.released

    @property
    def held(self) -> AccountRef:
        return self.account.sibling(AccountKind.HELD)


@dataclass(frozen=True)
class HoldCall:
    """A hold operation as first sent, to replay it later."""

    operation: str  # reserve | capture | release
    hold_id: str
    key: str
    units: int
    account: AccountRef
    entry_id: str


class LedgerMachine(RuleBasedStateMachine):
    """The ledger against a dict of balances; see the module docstring."""

    node: ClassVar[Node]

    accounts = Bundle("accounts")

    def __init__(self) -> None:
        super().__init__()
        wipe(self.node)
        self.balances: dict[AccountRef, int] = defaultdict(int)
        self.posted: dict[str, tuple[EntryDraft, str]] = {}  # key -> (draft, entry id)
        self.reversible: dict[str, EntryDraft] = {}  # entry id -> its draft
        self.reversed: dict[str, str] = {}  # entry id -> key of its reversal
        self.reversals: list[str] = []
        self.holds: dict[str, ModelHold] = {}
        self.hold_calls: list[HoldCall] = []
        self.counter = 0

    # -- helpers -----------------------------------------------------------------------

    def _key(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def _after(self, postings: Iterable[Posting]) -> dict[AccountRef, int] | None:
        """Balances after ``postings``, or None where the ledger must refuse (overdraft)."""
        after: dict[AccountRef, int] = {}
        for posting in postings:
            balance = after.get(posting.account, self.balances[posting.account]) + posting.units
            if balance < 0 and posting.account.kind is not AccountKind.WORLD:
                return None
            after[posting.account] = balance
        return after

    def _post(self, draft: EntryDraft) -> str | None:
        """Post ``draft``, checking the outcome the model predicts; the entry id if posted."""
        after = self._after(draft.postings)
        if after is None:
            with pytest.raises(InsufficientFundsError):
                self.node.ledger.post(draft)
            return None
        posted = self.node.ledger.post(draft)
        assert posted.created
        assert posted.entry.postings == draft.postings
        self.balances.update(after)
        self.posted[draft.idempotency_key] = (draft, posted.entry.id)
        self.reversible[posted.entry.id] = draft
        return posted.entry.id

    def _portion(self, data: st.DataObject, available: int, label: str) -> int:
        """Mostly a share of ``available``, sometimes all of it, sometimes a bit more (refused)."""
        percent = data.draw(st.integers(1, 105), label=label)
        return max(1, available * percent // 100)

    def _owners_holding(self, asset: str) -> list[tuple[OwnerType, str]]:
        """Owners with some ``asset`` available (every owner when none has any)."""
        funded = [o for o in OWNERS if self.balances[_ref(o, asset, AccountKind.AVAILABLE)] > 0]
        return funded or list(OWNERS)

    def _open_holds(self) -> list[ModelHold]:
        return [h for h in self.holds.values() if h.remaining > 0]

    def _closed_holds(self) -> list[ModelHold]:
        return [h for h in self.holds.values() if h.remaining == 0]

    # -- money in, money around ----------------------------------------------------------

    @rule(
        target=accounts,
        owner=st.sampled_from(OWNERS),
        asset=st.sampled_from(ASSETS),
        data=st.data(),
    )
    def deposit(self, owner: tuple[OwnerType, str], asset: str, data: st.DataObject) -> AccountRef:
        """Open (or top up) an owner's available account with value from outside."""
        account = _ref(owner, asset, AccountKind.AVAILABLE)
        units = data.draw(st.integers(1, CAPS[asset]), label="deposit units")
        world = _operator(asset, AccountKind.WORLD)
        self._post(EntryDraft(self._key("dep"), _postings((world, -units), (account, units))))
        return account

    @rule(source=accounts, data=st.data())
    def transfer(self, source: AccountRef, data: st.DataObject) -> None:
        owners = [o for o in OWNERS if o != (source.owner_type, source.owner_id)]
        owner = data.draw(st.sampled_from(owners), label="to")
        destination = _ref(owner, source.asset, AccountKind.AVAILABLE)
        units = self._portion(data, self.balances[source], "transfer units")
        self._post(EntryDraft(self._key("tr"), _postings((source, -units), (destination, units))))

    @rule(pair=st.sampled_from(PAIRS), data=st.data())
    def settle_trade(self, pair: tuple[str, str], data: st.DataObject) -> None:
        """Seller gives base, buyer gives quote, the operator takes a fee on each side."""
        base, quote = pair
        seller = data.draw(st.sampled_from(self._owners_holding(base)), label="seller")
        buyers = [o for o in self._owners_holding(quote) if o != seller]
        buyer = data.draw(st.sampled_from(buyers or [o for o in OWNERS if o != seller]))
        seller_base = _ref(seller, base, AccountKind.AVAILABLE)
        buyer_quote = _ref(buyer, quote, AccountKind.AVAILABLE)
        qty = self._portion(data, self.balances[seller_base], "quantity")
        cost = self._portion(data, self.balances[buyer_quote], "cost")
        base_fee = data.draw(st.integers(0, (qty - 1) // 10), label="base fee")
        quote_fee = data.draw(st.integers(0, (cost - 1) // 10), label="quote fee")
        postings = _postings(
            (seller_base, -qty),
            (_ref(buyer, base, AccountKind.AVAILABLE), qty - base_fee),
            (_operator(base, AccountKind.FEES), base_fee),
            (buyer_quote, -cost),
            (_ref(seller, quote, AccountKind.AVAILABLE), cost - quote_fee),
            (_operator(quote, AccountKind.FEES), quote_fee),
        )
        assert 4 <= len(postings) <= 6
        self._post(EntryDraft(self._key("trade"), postings, memo=f"trade {base}/{quote}"))

    @rule(asset=st.sampled_from(ASSETS), data=st.data())
    def fund_inventory(self, asset: str, data: st.DataObject) -> None:
        units = data.draw(st.integers(1, CAPS[asset]), label="inventory units")
        inventory = _operator(asset, AccountKind.INVENTORY)
        world = _operator(asset, AccountKind.WORLD)
        self._post(EntryDraft(self._key("inv"), _postings((world, -units), (inventory, units))))

    @rule(source=accounts, data=st.data())
    def convert(self, source: AccountRef, data: st.DataObject) -> None:
        """The user sells one asset to the operator's inventory and gets another from it."""
        target = data.draw(st.sampled_from([a for a in ASSETS if a != source.asset]))
        paid = self._portion(data, self.balances[source], "paid")
        out_inventory = _operator(target, AccountKind.INVENTORY)
        received = self._portion(data, self.balances[out_inventory], "received")
        postings = _postings(
            (source, -paid),
            (_operator(source.asset, AccountKind.INVENTORY), paid),
            (out_inventory, -received),
            (
                AccountRef(source.owner_type, source.owner_id, target, AccountKind.AVAILABLE),
                received,
            ),
        )
        self._post(EntryDraft(self._key("conv"), postings, metadata={"quote": "q1"}))

    @rule(source=accounts, extra=st.integers(1, 10**6))
    def overdraw(self, source: AccountRef, extra: int) -> None:
        """Spending more than a no-overdraft account holds is refused; nothing changes."""
        units = self.balances[source] + extra
        fees = _operator(source.asset, AccountKind.FEES)
        draft = EntryDraft(self._key("over"), _postings((source, -units), (fees, units)))
        with pytest.raises(InsufficientFundsError):
            self.node.ledger.post(draft)
        assert self.node.queries.entry_by_key(draft.idempotency_key) is None

    # -- holds -------------------------------------------------------------------------

    @rule(account=accounts, data=st.data())
    def reserve(self, account: AccountRef, data: st.DataObject) -> None:
        units = self._portion(data, self.balances[account], "hold units")
        key = self._key("hold")
        held = account.sibling(AccountKind.HELD)
        after = self._after([Posting(account, -units), Posting(held, units)])
        if after is None:
            with pytest.raises(InsufficientFundsError):
                self.node.ledger.reserve(account, units, key)
            return
        result = self.node.ledger.reserve(account, units, key)
        assert result.created
        assert result.hold.remaining == units
        self.balances.update(after)
        self.holds[result.hold.id] = ModelHold(result.hold.id, account, units)
        self.hold_calls.append(
            HoldCall("reserve", result.hold.id, key, units, account, result.entry.id)
        )

    @precondition(lambda self: bool(self._open_holds()))
    @rule(data=st.data())
    def capture(self, data: st.DataObject) -> None:
        hold = data.draw(st.sampled_from(self._open_holds()), label="hold")
        units = min(hold.remaining, self._portion(data, hold.remaining, "capture units"))
        destination = data.draw(
            st.sampled_from(
                [_operator(hold.account.asset, AccountKind.FEES)]
                + [_ref(o, hold.account.asset, AccountKind.AVAILABLE) for o in OWNERS]
            ),
            label="destination",
        )
        key = self._key("cap")
        result = self.node.ledger.capture(hold.id, units, destination, key)
        assert result.created
        self.balances[hold.held] -= units
        self.balances[destination] += units
        hold.captured += units
        assert (result.hold.captured, result.hold.remaining) == (hold.captured, hold.remaining)
        self.hold_calls.append(
            HoldCall("capture", hold.id, key, units, destination, result.entry.id)
        )

    @precondition(lambda self: bool(self._open_holds()))
    @rule(data=st.data())
    def capture_too_much(self, data: st.DataObject) -> None:
        hold = data.draw(st.sampled_from(self._open_holds()), label="hold")
        fees = _operator(hold.account.asset, AccountKind.FEES)
        with pytest.raises(ValidationError):
            self.node.ledger.capture(hold.id, hold.remaining + 1, fees, self._key("cap"))

    @precondition(lambda self: bool(self._open_holds()))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        hold = data.draw(st.sampled_from(self._open_holds()), label="hold")
        key = self._key("rel")
        result = self.node.ledger.release(hold.id, key)
        assert result.created
        self.balances[hold.held] -= hold.remaining
        self.balances[hold.account] += hold.remaining
        hold.released += hold.remaining
        assert result.hold.remaining == 0
        self.hold_calls.append(HoldCall("release", hold.id, key, 0, hold.account, result.entry.id))

    @precondition(lambda self: bool(self._closed_holds()))
    @rule(data=st.data(), operation=st.sampled_from(["capture", "release"]))
    def touch_closed_hold(self, data: st.DataObject, operation: str) -> None:
        hold = data.draw(st.sampled_from(self._closed_holds()), label="hold")
        ledger, key = self.node.ledger, self._key(operation)
        if operation == "capture":
            with pytest.raises(ConflictError, match="closed"):
                ledger.capture(hold.id, 1, hold.account, key)
        else:
            with pytest.raises(ConflictError, match="closed"):
                ledger.release(hold.id, key)

    # -- reversals ---------------------------------------------------------------------

    @precondition(lambda self: bool(self.reversible))
    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        entry_id = data.draw(st.sampled_from(sorted(self.reversible)), label="entry")
        draft = self.reversible[entry_id]
        key = self._key("rev")
        after = self._after(Posting(p.account, -p.units) for p in draft.postings)
        if after is None:
            with pytest.raises(InsufficientFundsError):
                self.node.ledger.reverse(entry_id, key)
            return
        result = self.node.ledger.reverse(entry_id, key)
        assert result.created
        assert result.entry.reverses == entry_id
        self.balances.update(after)
        del self.reversible[entry_id]
        self.reversed[entry_id] = key
        self.reversals.append(result.entry.id)

    @precondition(lambda self: bool(self.reversed))
    @rule(data=st.data(), same_key=st.booleans())
    def reverse_again(self, data: st.DataObject, same_key: bool) -> None:
        """Same key: the first reversal comes back; a new key: refused, it is reversed."""
        entry_id = data.draw(st.sampled_from(sorted(self.reversed)), label="entry")
        if same_key:
            again = self.node.ledger.reverse(entry_id, self.reversed[entry_id])
            assert not again.created
            assert again.entry.reverses == entry_id
        else:
            with pytest.raises(ConflictError, match="already reversed"):
                self.node.ledger.reverse(entry_id, self._key("rev"))

    @precondition(lambda self: bool(self.reversals or self.hold_calls))
    @rule(data=st.data())
    def reverse_what_cannot_be_reversed(self, data: st.DataObject) -> None:
        """A reversal, or an entry that belongs to a hold, is never reversed."""
        candidates = self.reversals + [c.entry_id for c in self.hold_calls]
        entry_id = data.draw(st.sampled_from(candidates), label="entry")
        with pytest.raises(ConflictError):
            self.node.ledger.reverse(entry_id, self._key("rev"))

    # -- replays -----------------------------------------------------------------------

    @precondition(lambda self: bool(self.posted))
    @rule(data=st.data())
    def replay_same_body(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.posted)), label="key")
        draft, entry_id = self.posted[key]
        again = self.node.ledger.post(draft)
        assert not again.created
        assert again.entry.id == entry_id

    @precondition(lambda self: bool(self.posted))
    @rule(data=st.data(), change=st.sampled_from(["memo", "units", "metadata"]))
    def replay_different_body(self, data: st.DataObject, change: str) -> None:
        key = data.draw(st.sampled_from(sorted(self.posted)), label="key")
        draft, _ = self.posted[key]
        if change == "memo":
            other = replace(draft, memo=draft.memo + " (edited)")
        elif change == "units":
            other = replace(
                draft, postings=tuple(Posting(p.account, 2 * p.units) for p in draft.postings)
            )
        else:
            other = replace(draft, metadata={**draft.metadata, "edited": "yes"})
        with pytest.raises(IdempotencyKeyReusedError):
            self.node.ledger.post(other)

    @precondition(lambda self: bool(self.hold_calls))
    @rule(data=st.data(), same_body=st.booleans())
    def replay_hold_call(self, data: st.DataObject, same_body: bool) -> None:
        call = data.draw(st.sampled_from(self.hold_calls), label="call")
        ledger = self.node.ledger
        if call.operation == "reserve":
            units = call.units if same_body else call.units + 1
            if same_body:
                again = ledger.reserve(call.account, units, call.key)
                assert (again.created, again.hold.id) == (False, call.hold_id)
                assert again.entry.id == call.entry_id
            else:
                with pytest.raises(IdempotencyKeyReusedError):
                    ledger.reserve(call.account, units, call.key)
        elif call.operation == "capture":
            if same_body:
                again = ledger.capture(call.hold_id, call.units, call.account, call.key)
                assert (again.created, again.entry.id) == (False, call.entry_id)
            else:
                with pytest.raises(IdempotencyKeyReusedError):
                    ledger.capture(call.hold_id, call.units + 1, call.account, call.key)
        elif same_body:
            again = ledger.release(call.hold_id, call.key)
            assert (again.created, again.entry.id) == (False, call.entry_id)
        else:
            # The release's key sent to capture the same hold: another operation.
            with pytest.raises(IdempotencyKeyReusedError):
                ledger.capture(call.hold_id, 1, call.account, call.key)

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def ledger_matches_the_model(self) -> None:
        # One connection and read transaction for the whole check (as Node.verify_ledger).
        with self.node.engine.connect() as conn, conn.begin():
            reader = SeenQueries(self.node.engine, conn)
            report = verify_ledger(reader)
        assert report.ok, report.problems
        assert all(total == 0 for total in report.totals.values()), report.totals
        stored = {account.ref: account for account in reader.seen_accounts}
        for ref, account in stored.items():
            assert account.balance == self.balances[ref], ref.code
            assert account.allow_overdraft is (ref.kind is AccountKind.WORLD), ref.code
            if not account.allow_overdraft:
                assert account.balance >= 0, ref.code
        missing = [r.code for r, units in self.balances.items() if units and r not in stored]
        assert missing == []
        _assert_sums_to_zero(self.balances)
        open_holds = {h.id: h.remaining for h in reader.seen_open_holds}
        assert open_holds == {h.id: h.remaining for h in self._open_holds()}


def _assert_sums_to_zero(balances: Mapping[AccountRef, int]) -> None:
    totals: dict[str, int] = defaultdict(int)
    for ref, units in balances.items():
        totals[ref.asset] += units
    assert all(total == 0 for total in totals.values()), totals


def run_ledger_machine(node: Node, examples: int, steps: int) -> None:
    machine = type("LedgerMachineOnNode", (LedgerMachine,), {"node": node})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


PUSH_EXAMPLES = 100
PUSH_STEPS = 50
PUSH_SHARDS = 2  # independent runs, so pytest-xdist can spread the examples over its workers


class TestLedgerModel:
    @pytest.mark.long_push
    @pytest.mark.parametrize("shard", range(1, PUSH_SHARDS + 1), ids=lambda n: f"shard{n}")
    def test_ledger_agrees_with_the_model_when_driven_by_random_operations(
        self, any_node: Node, shard: int
    ) -> None:
        run_ledger_machine(any_node, examples=PUSH_EXAMPLES // PUSH_SHARDS, steps=PUSH_STEPS)

    @pytest.mark.slow
    def test_ledger_agrees_with_the_model_when_driven_for_long(self, any_node: Node) -> None:
        examples = int(os.environ.get("DPG_R1_EXAMPLES", "2000"))
        steps = int(os.environ.get("DPG_R1_STEPS", "200"))
        run_ledger_machine(any_node, examples=examples, steps=steps)
