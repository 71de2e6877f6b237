"""Live trading feed over WebSocket: ``/api/v1/trading/ws``.

Authenticate the handshake with ``Authorization: token <API key>`` (a key with
``dpg.trading.view``); a refused handshake is closed with code 4000 + the HTTP status it
would have had (4401, 4403). Then send JSON commands:

- ``{"op": "subscribe", "channels": ["book:BTC-USD", "trades:BTC-USD", "ticker:BTC-USD",
  "orders"]}``: answered with ``{"type": "subscribed", "channels": [...]}``;
- ``{"op": "unsubscribe", "channels": [...]}``; ``{"op": "ping"}`` (answer ``pong``).

Every feed message is ``{"type": ..., "channel": ..., "data": {...}}``. A ``book:`` channel
first sends a ``snapshot`` (``data``: ``pair``, ``seq``, ``bids``, ``asks`` as ``[price,
quantity]``), then ``delta`` messages (``seq`` = N+1, N+2, ...) whose levels carry the new
total quantity at each changed price (zero: the level is gone). Deltas are consecutive per
pair: a gap means messages were lost, so subscribe again for a fresh snapshot. ``trades:``
sends ``trade``, ``ticker:`` sends ``ticker`` (last price, best bid and ask) and
``orders`` sends ``order`` updates of the key's own trading user only (keys bound with
``dpg.trading.view:<userId>``); ``data`` has the REST API's fields.

Errors in a command are answered with ``{"type": "error", "message": ..., "field": ...}``;
a client too slow to keep up is closed with code 4503 and must reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.to_thread
import msgspec
import structlog
from litestar import Litestar, WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.types import ASGIApp, Receive, Scope, Send

from dpgnode.api.auth import ANONYMOUS, IDENTITY_STATE, Identity, authenticated_key
from dpgnode.api.errors import status_for
from dpgnode.api.policy import requires
from dpgnode.domain.access import TRADING_VIEW
from dpgnode.domain.events import JsonValue
from dpgnode.errors import (
    AuthenticationError,
    DpgError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from dpgnode.node import Node
from dpgnode.services.trading import FeedMessage, FeedOverflowError, Subscription
from dpgnode.services.trading.feed import ORDERS_CHANNEL
from dpgnode.services.trading.views import levels_view

log = structlog.get_logger(__name__)
_MAX_CHANNELS = 50
_KINDS = ("book", "trades", "ticker")


def _node(scope: Scope) -> Node:
    node: Node = scope["litestar_app"].state["node"]
    return node


class WebSocketGate:
    """Identifies the handshake's API key and closes refused handshakes with 4000 + status.

    The app's auth middleware identifies HTTP requests only; the policy guard then reads
    the identity set here like for any route.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        identity = await self._identify(scope)
        scope.setdefault("state", {})[IDENTITY_STATE] = identity
        refusal = _refusal(identity)
        if refusal is not None:
            # Decided here as the policy guard would (it still runs): Litestar closes a
            # WebSocket refused by a guard with 4500, which hides why.
            code, reason = 4000 + status_for(refusal), refusal.message[:120]
            await send({"type": "websocket.close", "code": code, "reason": reason})
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _identify(scope: Scope) -> Identity:
        headers = scope.get("headers", ())
        header = next(
            (v.decode("latin-1") for k, v in headers if k.lower() == b"authorization"), None
        )
        if header is None or not header.strip():
            return ANONYMOUS
        scheme, _, secret = header.strip().partition(" ")
        if scheme.lower() != "token":
            return Identity(error=AuthenticationError("send Authorization: token <API key>"))
        try:
            key = await anyio.to_thread.run_sync(_node(scope).access.authenticate, secret.strip())
        except AuthenticationError as exc:
            return Identity(error=exc)
        return Identity(key=key)


def _refusal(identity: Identity) -> DpgError | None:
    if identity.error is not None:
        return identity.error
    if identity.key is None:
        return AuthenticationError("authentication required: send Authorization: token <key>")
    if not identity.key.allows(TRADING_VIEW):
        return PermissionDeniedError(f"this API key lacks the permission {TRADING_VIEW}")
    return None


@contextlib.asynccontextmanager
async def feed_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Run the node's trading feed on the app's event loop while the app runs."""
    node: Node = app.state["node"]
    task = asyncio.create_task(node.trading_feed.run(), name="dpg-trading-feed")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class _Session:
    """One connection: its subscription, snapshot sequence numbers and a send lock."""

    def __init__(self, socket: WebSocket[Any, Any, Any], node: Node, user: str | None) -> None:
        self.socket = socket
        self.node = node
        self.user = user
        self.subscription: Subscription = node.trading_feed.subscribe(user)
        self.snapshot_seq: dict[str, int] = {}
        self.lock = asyncio.Lock()

    async def send(self, message: dict[str, JsonValue]) -> None:
        await self.socket.send_json(message)

    async def pump(self) -> None:
        """Forward feed messages, dropping book deltas a snapshot already covers."""
        while True:
            try:
                message = await self.subscription.get()
            except FeedOverflowError:
                await self.socket.close(code=4503, reason="too slow: reconnect and resync")
                return
            async with self.lock:
                if self._covered(message):
                    continue
                await self.send(
                    {"type": message.kind, "channel": message.channel, "data": message.data}
                )

    def _covered(self, message: FeedMessage) -> bool:
        seq = message.data.get("seq")
        floor = self.snapshot_seq.get(message.channel)
        return message.kind == "delta" and floor is not None and isinstance(seq, int) and (
            seq <= floor
        )

    async def handle(self, command: Any) -> None:
        if not isinstance(command, dict) or command.get("op") not in (
            "subscribe", "unsubscribe", "ping",
        ):
            raise ValidationError("op must be subscribe, unsubscribe or ping", field="op")
        if command["op"] == "ping":
            async with self.lock:
                await self.send({"type": "pong"})
            return
        channels = command.get("channels")
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise ValidationError("channels must be a list of strings", field="channels")
        if command["op"] == "unsubscribe":
            self.subscription.channels.difference_update(channels)
            for channel in channels:
                self.snapshot_seq.pop(channel, None)
            async with self.lock:
                await self.send({"type": "unsubscribed", "channels": channels})
            return
        for channel in channels:
            self._check(channel)
        if len(self.subscription.channels | set(channels)) > _MAX_CHANNELS:
            raise ValidationError(f"at most {_MAX_CHANNELS} channels", field="channels")
        async with self.lock:  # deltas wait until their snapshot is out
            self.subscription.channels.update(channels)
            await self.send({"type": "subscribed", "channels": channels})
            for channel in channels:
                await self._snapshot(channel)

    def _check(self, channel: str) -> None:
        if channel == ORDERS_CHANNEL:
            if self.user is None:
                raise ValidationError(
                    "the orders channel needs a key bound to a trading user "
                    "(dpg.trading.view:<userId>)", field="channels",
                )
            return
        kind, _, pair = channel.partition(":")
        if kind not in _KINDS:
            raise ValidationError(f"unknown channel {channel[:60]!r}", field="channels")
        try:
            self.node.trading.pair(pair)
        except NotFoundError as exc:
            raise ValidationError(exc.message, field="channels") from exc

    async def _snapshot(self, channel: str) -> None:
        kind, _, pair = channel.partition(":")
        if kind == "book":
            depth = await anyio.to_thread.run_sync(self.node.trading.depth, pair, 100)
            self.snapshot_seq[channel] = depth.seq
            await self.send({"type": "snapshot", "channel": channel, "data": {
                "pair": pair, "seq": depth.seq, "bids": levels_view(depth.pair, depth.bids),
                "asks": levels_view(depth.pair, depth.asks),
            }})


@websocket("/trading/ws", opt=requires(TRADING_VIEW), middleware=[WebSocketGate])
async def trading_feed(socket: WebSocket[Any, Any, Any]) -> None:
    """Live book deltas, trades, tickers and the user's order updates (see module docstring)."""
    key = authenticated_key(socket.scope)
    node = _node(socket.scope)
    await socket.accept()
    session = _Session(socket, node, key.acting_user(TRADING_VIEW))
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(session.pump)
            await _receive(session)
            tasks.cancel_scope.cancel()
    finally:
        session.subscription.close()


async def _receive(session: _Session) -> None:
    while True:
        try:
            text = await session.socket.receive_data("text")
        except WebSocketDisconnect:
            return
        try:
            command = msgspec.json.decode(text)
        except msgspec.DecodeError:
            command = None
        try:
            await session.handle(command)
        except DpgError as exc:
            field = exc.details.get("field") if not isinstance(exc, ValidationError) else exc.field
            async with session.lock:
                await session.send({"type": "error", "message": exc.message, "field": field})
