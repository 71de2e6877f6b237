"""The blocking client, for scripts and shop-side tools."""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

import httpx

from dpgnode.client import calls
from dpgnode.client import models as m
from dpgnode.client.calls import Call
from dpgnode.client.errors import unavailable
from dpgnode.client.transport import api_base, decode, headers, request_args

T = TypeVar("T")


class DpgClient:
    """The node's API over HTTP, blocking; errors are the node's own types.

    ``DpgClient("http://127.0.0.1:8080", api_key)``; pass ``http=`` to bring your own
    ``httpx.Client`` (a proxy, a test transport); its ``base_url`` is replaced.
    """

    def __init__(
        self, url: str, api_key: str | None = None, *, timeout: float = 10.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.base_url = api_base(url)
        self._http = http or httpx.Client(timeout=timeout)
        self._http.base_url = httpx.URL(self.base_url + "/")
        self._http.headers.update(headers(api_key))

    def send(self, call: Call[T]) -> T:
        """Send one call (see :mod:`dpgnode.client.calls`) and decode its answer."""
        try:
            response = self._http.request(**request_args(call))
        except httpx.TransportError as exc:
            raise unavailable(exc, self.base_url) from exc
        return decode(call, response)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DpgClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- one method per call -------------------------------------------------------------

    def health(self) -> m.Health:
        return self.send(calls.health())

    def server_info(self) -> m.ServerInfo:
        return self.send(calls.server_info())

    def current_key(self) -> m.ApiKeyInfo:
        return self.send(calls.current_key())

    def stores(self) -> list[m.Store]:
        return self.send(calls.stores())

    def accounts(self, owner_type: str | None = None, owner_id: str | None = None,
                 asset: str | None = None) -> list[m.Account]:
        return self.send(calls.accounts(owner_type, owner_id, asset))

    def verify_ledger(self) -> m.LedgerReport:
        return self.send(calls.verify_ledger())

    def wallets(self, asset: str | None = None, offset: int = 0,
                limit: int = 100) -> list[m.Wallet]:
        return self.send(calls.wallets(asset, offset, limit))

    def balance(self, wallet_id: str) -> m.Balance:
        return self.send(calls.balance(wallet_id))

    def pairs(self) -> list[m.Pair]:
        return self.send(calls.pairs())

    def order_book(self, pair: str, depth: int = 50) -> m.OrderBook:
        return self.send(calls.order_book(pair, depth))

    def ticker(self, pair: str) -> m.Ticker:
        return self.send(calls.ticker(pair))

    def tape(self, pair: str, limit: int = 50) -> list[m.Trade]:
        return self.send(calls.tape(pair, limit))

    def halt_pair(self, pair: str) -> m.Pair:
        return self.send(calls.halt_pair(pair))

    def resume_pair(self, pair: str) -> m.Pair:
        return self.send(calls.resume_pair(pair))

    def payouts(self, status: str | None = None, asset: str | None = None,
                limit: int = 50) -> list[m.Payout]:
        return self.send(calls.payouts(status, asset, limit))

    def payout(self, payout_id: str) -> m.Payout:
        return self.send(calls.payout(payout_id))

    def approve_payout(self, payout_id: str, operator_token: str) -> m.Payout:
        return self.send(calls.approve_payout(payout_id, operator_token))

    def reject_payout(self, payout_id: str, operator_token: str, reason: str = "") -> m.Payout:
        return self.send(calls.reject_payout(payout_id, operator_token, reason))

    def address_gaps(self) -> list[m.AddressGap]:
        return self.send(calls.address_gaps())

    def events(self, after: int = 0, type_prefix: str | None = None,
               limit: int = 100) -> m.EventPage:
        return self.send(calls.events(after, type_prefix, limit))

    def event_progress(self) -> m.EventProgress:
        return self.send(calls.event_progress())

    def invoices(self, store_id: str) -> list[m.Invoice]:
        return self.send(calls.invoices(store_id))

    def webhooks(self, store_id: str) -> list[m.Webhook]:
        return self.send(calls.webhooks(store_id))
