"""What the node's API answers, as typed, immutable objects.

Amounts, prices and quantities stay decimal strings, exactly as the API sends them (never
floats); convert with :class:`decimal.Decimal` where arithmetic is needed. Unknown fields
are ignored, so a client keeps working against a newer node; the test suite checks every
field here against the node's OpenAPI document so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import msgspec

JsonObject = dict[str, Any]


class Model(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """A response body (camelCase on the wire, snake_case here)."""


class Health(Model, frozen=True):
    synchronized: bool


class SyncStatus(Model, frozen=True):
    payment_method_id: str
    chain_height: int
    sync_height: int | None = None
    available: bool = False


class ServerInfo(Model, frozen=True):
    version: str
    fully_synched: bool
    supported_payment_methods: list[str] = msgspec.field(default_factory=list)
    sync_status: list[SyncStatus] = msgspec.field(default_factory=list)


class ApiKeyInfo(Model, frozen=True):
    api_key: str
    """The key's id (``key_…``): the secret is never sent back."""
    label: str
    permissions: list[str]


class Store(Model, frozen=True):
    id: str
    name: str


class Account(Model, frozen=True):
    account: str
    owner_type: str
    owner_id: str
    asset: str
    kind: str
    balance: str


class LedgerReport(Model, frozen=True):
    ok: bool
    entries: int
    accounts: int
    problems: list[str]


class Wallet(Model, frozen=True):
    id: str
    owner_type: str
    owner_id: str
    asset: str
    label: str
    created_time: int


class Balance(Model, frozen=True):
    wallet_id: str
    asset: str
    available: str
    held: str
    total: str


class Pair(Model, frozen=True):
    symbol: str
    base: str
    quote: str
    tick: str
    lot: str
    min_size: str
    max_size: str
    maker_fee: str
    taker_fee: str
    mode: str
    status: str
    """``open``, ``halted`` or ``closed`` (never opened)."""


class OrderBook(Model, frozen=True):
    pair: str
    status: str
    seq: int
    bids: list[tuple[str, str]]
    """``(price, quantity)`` per level, best (highest) first."""
    asks: list[tuple[str, str]]
    """``(price, quantity)`` per level, best (lowest) first."""


class Ticker(Model, frozen=True):
    pair: str
    status: str
    last_price: str | None
    best_bid: str | None
    best_ask: str | None
    open_24h: str | None = msgspec.field(default=None, name="open24h")
    high_24h: str | None = msgspec.field(default=None, name="high24h")
    low_24h: str | None = msgspec.field(default=None, name="low24h")
    volume_24h: str = msgspec.field(default="0", name="volume24h")
    trades_24h: int = msgspec.field(default=0, name="trades24h")


class Trade(Model, frozen=True):
    id: str
    seq: int
    pair: str
    price: str
    quantity: str
    value: str
    taker_side: str
    created_time: int


class Approval(Model, frozen=True):
    operator_id: str
    operator_name: str
    approved_time: int


class PayoutPolicy(Model, frozen=True):
    asset: str
    max_per_transaction: str | None
    max_per_day: str | None
    max_payouts_per_hour: int | None
    approval_threshold: str | None
    approvals_required: int
    require_allowlist: bool
    allowed_destinations: list[str]
    destination_allowed: bool


class Payout(Model, frozen=True):
    id: str
    status: str
    asset: str
    amount: str
    destination: str
    debit: str
    source: str
    requested_by: str
    requested_by_name: str
    approvals_required: int
    approvals: list[Approval]
    approvals_missing: int
    memo: str
    txid: str | None
    failure: str
    created_time: int
    updated_time: int
    policy: PayoutPolicy | None


class AddressGap(Model, frozen=True):
    account_id: str
    keychain_id: str
    scheme: str
    network: str
    issued: int
    used: int
    last_used_index: int
    trailing_unused: int
    gap: int
    gap_limit_needed: int
    configured_limit: int
    alert: bool


class Event(Model, frozen=True):
    seq: int
    id: str
    type: str
    aggregate: str
    created_time: int
    data: JsonObject


class EventPage(Model, frozen=True):
    events: list[Event]
    next: int


class SinkProgress(Model, frozen=True):
    sink: str
    delivered_seq: int
    pending: int


class EventProgress(Model, frozen=True):
    newest_seq: int
    sinks: list[SinkProgress]


class Invoice(Model, frozen=True):
    """A merchant invoice in Greenfield's shape (only on nodes that serve invoices)."""

    id: str
    status: str
    amount: str = ""
    currency: str = ""
    created_time: int = 0


class Webhook(Model, frozen=True):
    """A store's webhook in Greenfield's shape (only on nodes that serve webhooks)."""

    id: str
    url: str = ""
    enabled: bool = True


class FeedMessage(Model, frozen=True):
    """One message of the trading WebSocket.

    ``type`` is snapshot, delta, trade, ticker, order, subscribed, error or pong.
    """

    type: str
    channel: str = ""
    data: JsonObject = msgspec.field(default_factory=dict)
    message: str = ""
    """The reason, on ``error`` messages."""
