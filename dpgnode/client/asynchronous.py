"""The asyncio client, for event loops (the dashboard runs it in Textual workers)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import TypeVar

import httpx

from dpgnode.client import calls
from dpgnode.client import models as m
from dpgnode.client.calls import Call
from dpgnode.client.errors import unavailable
from dpgnode.client.feed import TradingFeed, open_feed
from dpgnode.client.transport import api_base, decode, feed_url, headers, request_args

T = TypeVar("T")


class AsyncDpgClient:
    """The node's API over HTTP for asyncio; errors are the node's own types.

    ``AsyncDpgClient("http://127.0.0.1:8080", api_key)``; pass ``http=`` to bring your own
    ``httpx.AsyncClient`` (a proxy, a test transport); its ``base_url`` is replaced.
    """

    def __init__(
        self, url: str, api_key: str | None = None, *, timeout: float = 10.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = api_base(url)
        self._api_key = api_key
        self._timeout = timeout
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._http.base_url = httpx.URL(self.base_url + "/")
        self._http.headers.update(headers(api_key))

    async def send(self, call: Call[T]) -> T:
        """Send one call (see :mod:`dpgnode.client.calls`) and decode its answer."""
        try:
            response = await self._http.request(**request_args(call))
        except httpx.TransportError as exc:
            raise unavailable(exc, self.base_url) from exc
        return decode(call, response)

    def trading_feed(
        self, channels: Iterable[str] = ()
    ) -> AbstractAsyncContextManager[TradingFeed]:
        """The trading WebSocket, subscribed to ``channels`` (see :mod:`.feed`)."""
        return self._feed(tuple(channels))

    @asynccontextmanager
    async def _feed(self, channels: tuple[str, ...]) -> AsyncIterator[TradingFeed]:
        async with open_feed(feed_url(self.base_url), self._api_key,
                             timeout=self._timeout) as feed:
            await feed.subscribe(channels)
            yield feed

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncDpgClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- one method per call -------------------------------------------------------------

    async def health(self) -> m.Health:
        return await self.send(calls.health())

    async def server_info(self) -> m.ServerInfo:
        return await self.send(calls.server_info())

    async def current_key(self) -> m.ApiKeyInfo:
        return await self.send(calls.current_key())

    async def stores(self) -> list[m.Store]:
        return await self.send(calls.stores())

    async def accounts(self, owner_type: str | None = None, owner_id: str | None = None,
                       asset: str | None = None) -> list[m.Account]:
        return await self.send(calls.accounts(owner_type, owner_id, asset))

    async def verify_ledger(self) -> m.LedgerReport:
        return await self.send(calls.verify_ledger())

    async def wallets(self, asset: str | None = None, offset: int = 0,
                      limit: int = 100) -> list[m.Wallet]:
        return await self.send(calls.wallets(asset, offset, limit))

    async def balance(self, wallet_id: str) -> m.Balance:
        return await self.send(calls.balance(wallet_id))

    async def pairs(self) -> list[m.Pair]:
        return await self.send(calls.pairs())

    async def order_book(self, pair: str, depth: int = 50) -> m.OrderBook:
        return await self.send(calls.order_book(pair, depth))

    async def ticker(self, pair: str) -> m.Ticker:
        return await self.send(calls.ticker(pair))

    async def tape(self, pair: str, limit: int = 50) -> list[m.Trade]:
        return await self.send(calls.tape(pair, limit))

    async def halt_pair(self, pair: str) -> m.Pair:
        return await self.send(calls.halt_pair(pair))

    async def resume_pair(self, pair: str) -> m.Pair:
        return await self.send(calls.resume_pair(pair))

    async def payouts(self, status: str | None = None, asset: str | None = None,
                      limit: int = 50) -> list[m.Payout]:
        return await self.send(calls.payouts(status, asset, limit))

    async def payout(self, payout_id: str) -> m.Payout:
        return await self.send(calls.payout(payout_id))

    async def approve_payout(self, payout_id: str, operator_token: str) -> m.Payout:
        return await self.send(calls.approve_payout(payout_id, operator_token))

    async def reject_payout(self, payout_id: str, operator_token: str,
                            reason: str = "") -> m.Payout:
        return await self.send(calls.reject_payout(payout_id, operator_token, reason))

    async def address_gaps(self) -> list[m.AddressGap]:
        return await self.send(calls.address_gaps())

    async def events(self, after: int = 0, type_prefix: str | None = None,
                     limit: int = 100) -> m.EventPage:
        return await self.send(calls.events(after, type_prefix, limit))

    async def event_progress(self) -> m.EventProgress:
        return await self.send(calls.event_progress())

    async def invoices(self, store_id: str) -> list[m.Invoice]:
        return await self.send(calls.invoices(store_id))

    async def webhooks(self, store_id: str) -> list[m.Webhook]:
        return await self.send(calls.webhooks(store_id))
