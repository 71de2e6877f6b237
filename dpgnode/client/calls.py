"""Every API call the client knows, as data: method, path, parameters and result type.

Both clients (:class:`~dpgnode.client.DpgClient` and
:class:`~dpgnode.client.AsyncDpgClient`) send these, so a route's path, parameters and
decoding are written once. Paths are relative to ``/api/v1``; path segments are quoted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from dpgnode.client import models as m

T = TypeVar("T")
OPERATOR_TOKEN_HEADER = "X-Operator-Token"  # noqa: S105 - a header's name, not a token


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and how to decode its answer.

    ``result`` is the msgspec type of the body (``None``: the body is ignored).
    """

    method: str
    path: str
    result: Any
    params: Mapping[str, str | int] = field(default_factory=dict)
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


def _seg(value: str) -> str:
    return quote(value, safe="")


def _params(**values: str | int | None) -> dict[str, str | int]:
    return {k: v for k, v in values.items() if v is not None}


def health() -> Call[m.Health]:
    return Call("GET", "/health", m.Health)


def server_info() -> Call[m.ServerInfo]:
    return Call("GET", "/server/info", m.ServerInfo)


def current_key() -> Call[m.ApiKeyInfo]:
    return Call("GET", "/api-keys/current", m.ApiKeyInfo)


def stores() -> Call[list[m.Store]]:
    return Call("GET", "/stores", list[m.Store])


def accounts(
    owner_type: str | None = None, owner_id: str | None = None, asset: str | None = None
) -> Call[list[m.Account]]:
    return Call("GET", "/ledger/accounts", list[m.Account],
                _params(ownerType=owner_type, ownerId=owner_id, asset=asset))


def verify_ledger() -> Call[m.LedgerReport]:
    return Call("GET", "/ledger/verify", m.LedgerReport)


def wallets(
    asset: str | None = None, offset: int = 0, limit: int = 100
) -> Call[list[m.Wallet]]:
    return Call("GET", "/wallets", list[m.Wallet], _params(asset=asset, offset=offset,
                                                           limit=limit))


def balance(wallet_id: str) -> Call[m.Balance]:
    return Call("GET", f"/wallets/{_seg(wallet_id)}/balance", m.Balance)


def pairs() -> Call[list[m.Pair]]:
    return Call("GET", "/trading/pairs", list[m.Pair])


def order_book(pair: str, depth: int = 50) -> Call[m.OrderBook]:
    return Call("GET", f"/trading/orderbook/{_seg(pair)}", m.OrderBook, {"depth": depth})


def ticker(pair: str) -> Call[m.Ticker]:
    return Call("GET", f"/trading/ticker/{_seg(pair)}", m.Ticker)


def tape(pair: str, limit: int = 50) -> Call[list[m.Trade]]:
    return Call("GET", f"/trading/tape/{_seg(pair)}", list[m.Trade], {"limit": limit})


def halt_pair(pair: str) -> Call[m.Pair]:
    return Call("POST", f"/trading/pairs/{_seg(pair)}/halt", m.Pair)


def resume_pair(pair: str) -> Call[m.Pair]:
    return Call("POST", f"/trading/pairs/{_seg(pair)}/resume", m.Pair)


def payouts(
    status: str | None = None, asset: str | None = None, limit: int = 50
) -> Call[list[m.Payout]]:
    return Call("GET", "/custody/payouts", list[m.Payout],
                _params(status=status, asset=asset, limit=limit))


def payout(payout_id: str) -> Call[m.Payout]:
    return Call("GET", f"/custody/payouts/{_seg(payout_id)}", m.Payout)


def approve_payout(payout_id: str, operator_token: str) -> Call[m.Payout]:
    return Call("POST", f"/custody/payouts/{_seg(payout_id)}/approve", m.Payout,
                headers={OPERATOR_TOKEN_HEADER: operator_token})


def reject_payout(payout_id: str, operator_token: str, reason: str = "") -> Call[m.Payout]:
    return Call("POST", f"/custody/payouts/{_seg(payout_id)}/reject", m.Payout,
                json={"reason": reason}, headers={OPERATOR_TOKEN_HEADER: operator_token})


def address_gaps() -> Call[list[m.AddressGap]]:
    return Call("GET", "/custody/address-gaps", list[m.AddressGap])


def events(after: int = 0, type_prefix: str | None = None, limit: int = 100) -> Call[m.EventPage]:
    return Call("GET", "/events", m.EventPage, _params(after=after, type=type_prefix,
                                                       limit=limit))


def event_progress() -> Call[m.EventProgress]:
    return Call("GET", "/events/progress", m.EventProgress)


def invoices(store_id: str) -> Call[list[m.Invoice]]:
    """Greenfield's invoice list (404 on nodes without invoicing)."""
    return Call("GET", f"/stores/{_seg(store_id)}/invoices", list[m.Invoice])


def webhooks(store_id: str) -> Call[list[m.Webhook]]:
    """Greenfield's webhook list (404 on nodes without webhooks)."""
    return Call("GET", f"/stores/{_seg(store_id)}/webhooks", list[m.Webhook])
