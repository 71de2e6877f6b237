"""The trading WebSocket (``/api/v1/trading/ws``) as an async iterator of messages.

``async with client.trading_feed(["book:BTC-USD", "trades:BTC-USD"]) as feed:`` then
``async for message in feed``. A ``book:`` channel starts with a ``snapshot``, then
``delta`` messages whose ``seq`` follows on by one: a gap means messages were lost, so
:meth:`TradingFeed.resubscribe` for a fresh snapshot (``BookState`` in the dashboard
does). A refused handshake raises the node's error type (401 -> ``AuthenticationError``,
403 -> ``PermissionDeniedError``); a lost connection ``UnavailableError``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from dpgnode.client.models import FeedMessage
from dpgnode.errors import (
    AuthenticationError,
    DpgError,
    PermissionDeniedError,
    UnavailableError,
)

__all__ = ["TradingFeed", "open_feed"]

_REFUSALS: dict[int, type[DpgError]] = {401: AuthenticationError, 403: PermissionDeniedError}


class TradingFeed:
    """An open feed connection; iterate it for :class:`FeedMessage` objects."""

    def __init__(self, socket: ClientConnection, url: str) -> None:
        self._socket = socket
        self._url = url
        self.channels: set[str] = set()

    async def subscribe(self, channels: Iterable[str]) -> None:
        wanted = sorted(set(channels))
        if wanted:
            await self._send({"op": "subscribe", "channels": wanted})
            self.channels.update(wanted)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        gone = sorted(set(channels) & self.channels)
        if gone:
            await self._send({"op": "unsubscribe", "channels": gone})
            self.channels.difference_update(gone)

    async def resubscribe(self, channel: str) -> None:
        """Ask again for a channel's snapshot (after a gap in a book's deltas)."""
        await self._send({"op": "unsubscribe", "channels": [channel]})
        await self._send({"op": "subscribe", "channels": [channel]})

    async def _send(self, command: dict[str, object]) -> None:
        try:
            await self._socket.send(msgspec.json.encode(command).decode())
        except ConnectionClosed as exc:
            raise _closed(exc, self._url) from exc

    def __aiter__(self) -> AsyncIterator[FeedMessage]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[FeedMessage]:
        while True:
            try:
                text = await self._socket.recv()
            except ConnectionClosed as exc:
                raise _closed(exc, self._url) from exc
            yield msgspec.json.decode(text, type=FeedMessage)


def _closed(exc: ConnectionClosed, url: str) -> DpgError:
    code = exc.rcvd.code if exc.rcvd is not None else 1006
    reason = exc.rcvd.reason if exc.rcvd is not None else "connection lost"
    refusal = _REFUSALS.get(code - 4000)
    if refusal is not None:
        return refusal(reason or f"the feed refused this key ({code})")
    return UnavailableError(f"the trading feed at {url} closed ({code}: {reason})",
                            details={"closeCode": code})


@contextlib.asynccontextmanager
async def open_feed(url: str, api_key: str | None, *, timeout: float = 10.0
                    ) -> AsyncIterator[TradingFeed]:
    """Connect to the feed at ``url`` (``ws://…/api/v1/trading/ws``)."""
    headers = {"Authorization": f"token {api_key}"} if api_key else {}
    try:
        socket = await connect(url, additional_headers=headers, open_timeout=timeout)
    except InvalidStatus as exc:
        status = exc.response.status_code
        refusal = _REFUSALS.get(status)
        if refusal is not None:
            raise refusal(f"the trading feed refused this key (HTTP {status})") from exc
        raise UnavailableError(f"the trading feed at {url} answered HTTP {status}") from exc
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise UnavailableError(
            f"cannot reach the trading feed at {url} ({type(exc).__name__})"
        ) from exc
    try:
        yield TradingFeed(socket, url)
    except BaseException:
        # Cancelled (a dashboard switching pairs) or failed: awaiting a closing handshake
        # here could itself be cancelled and leak the socket, so drop the connection now.
        socket.transport.abort()
        raise
    await socket.close()
