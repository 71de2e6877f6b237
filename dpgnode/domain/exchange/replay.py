"""JSON-line codec and replay driver for the matching engine (``dpg book replay``).

Pure: it turns input lines into output lines; reading the file and writing standard output
is the CLI's job. One JSON object per input line (blank lines are skipped)::

    {"op":"limit","id":"o1","account":"a1","side":"buy","price":"100.50","qty":"3","tif":"GTC"}
        (tif GTC | IOC | FOK, default GTC; optional "post_only": true)
    {"op":"market","id":"o2","account":"a2","side":"sell","qty":"1.5"}
        (optional "price": the protection bound, the worst price it may trade at)
    {"op":"stop","id":"o3","account":"a3","side":"sell","trigger":"99","qty":"1","price":"98.5"}
        (no "price": stop-market; optional "kind": "stop_loss" (default) | "take_profit")
    {"op":"cancel","id":"o1"}
    {"op":"reduce","id":"o1","qty":"2"}     (the new remaining quantity, keeps priority)

``account`` is optional; orders without one never take part in self-trade prevention.
Prices and quantities are decimal strings (never JSON numbers) on the pair's tick and lot
grids. Output, one JSON object per line, in the order the events happen::

    {"event":"accepted","id":"o1"}
    {"event":"trade","maker":"o1","taker":"o2","price":"100.5","qty":"1.5"}
    {"event":"cancelled","id":"o2","remaining":"1.5","reason":"market"}
    {"event":"rejected","id":"o9","reason":"off_tick","line":7,"field":"price"}
    {"event":"triggered","id":"o3"}
    {"event":"reduced","id":"o1","remaining":"2"}
    {"event":"book","bids":[["100.5","1.5"]],"asks":[]}      (last: levels, best first)

Decimal strings are normalised (``100.50`` at tick ``0.01`` prints ``100.5``). A rejected
event always names its input ``line``, and ``field`` when one field is at fault; reasons are
the engine's (see ``engine``) plus ``malformed`` (not JSON, not an object, unknown op or
field, missing or ill-typed field, not a plain decimal), ``off_tick``, ``off_lot`` and
``duplicate_id``, which here also covers an id used by any earlier accepted order of the
file, not only a live one. A malformed line never stops the replay.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from dpgnode.domain.exchange.engine import MatchingEngine
from dpgnode.domain.exchange.pair import Increment
from dpgnode.domain.exchange.types import (
    BUY,
    SELL,
    Event,
    MatchingMode,
    OrderId,
    StopKind,
    TimeInForce,
)
from dpgnode.errors import ValidationError

_SIDES = {"buy": BUY, "sell": SELL}
_FIELDS = {
    "limit": ({"op", "id", "side", "price", "qty"}, {"account", "tif", "post_only"}),
    "market": ({"op", "id", "side", "qty"}, {"account", "price"}),
    "stop": ({"op", "id", "side", "trigger", "qty"}, {"account", "price", "kind"}),
    "cancel": ({"op", "id"}, set()),
    "reduce": ({"op", "id", "qty"}, set()),
}
_NEW_ORDER_OPS = frozenset({"limit", "market", "stop"})
_ENGINE_FIELDS = {
    "duplicate_id": "id",
    "unknown_order": "id",
    "invalid_quantity": "qty",
    "would_cross": "post_only",
}


class _LineRejectedError(Exception):
    """A line the codec refuses before it reaches the engine."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


def _dump(payload: Mapping[str, object]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


class ReplayDriver:
    """Feeds decoded commands to one engine and encodes its events.

    Args:
        tick: price increment of the pair.
        lot: quantity increment of the pair.
        mode: matching mode of the engine.
    """

    def __init__(self, tick: Increment, lot: Increment, mode: MatchingMode) -> None:
        self.tick = tick
        self.lot = lot
        self.engine = MatchingEngine(mode)
        self._used: set[OrderId] = set()

    def feed(self, line_no: int, line: str | bytes) -> list[str]:
        """Output lines for input line number ``line_no`` (1-based; none for a blank one)."""
        if not line.strip():
            return []
        try:
            data = json.loads(line)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            return [self._rejected(None, "malformed", line_no, "json")]
        oid = data.get("id") if isinstance(data, dict) else None
        shown_id = oid if isinstance(oid, str) and oid else None
        try:
            self._command(data)
        except _LineRejectedError as refusal:
            return [self._rejected(shown_id, refusal.reason, line_no, refusal.field)]
        events = self.engine.events
        out = [self._encode(event, line_no) for event in events]
        if (
            isinstance(data, dict)
            and data.get("op") in _NEW_ORDER_OPS
            and events
            and events[0][0] == "accepted"
        ):
            self._used.add(events[0][1])
        events.clear()
        return out

    def book(self) -> str:
        """The final ``book`` line: aggregated levels, best first."""
        bids, asks = self.engine.depth()
        return _dump(
            {
                "event": "book",
                "bids": [[self.tick.format(p), self.lot.format(q)] for p, q in bids],
                "asks": [[self.tick.format(p), self.lot.format(q)] for p, q in asks],
            }
        )

    # ------------------------------------------------------------------ decoding

    def _command(self, data: object) -> None:
        if not isinstance(data, dict):
            raise _LineRejectedError("malformed", "json")
        op = data.get("op")
        if not isinstance(op, str) or op not in _FIELDS:
            raise _LineRejectedError("malformed", "op")
        required, optional = _FIELDS[op]
        for name in sorted(required):
            if name not in data:
                raise _LineRejectedError("malformed", name)
        for name in sorted(data):
            if name not in required and name not in optional:
                raise _LineRejectedError("malformed", name)
        oid = data["id"]
        if not isinstance(oid, str) or not oid:
            raise _LineRejectedError("malformed", "id")
        handler: Callable[[str, dict[str, Any]], None] = getattr(self, f"_{op}")
        handler(oid, data)

    def _new_order(self, oid: str, data: Mapping[str, Any]) -> tuple[str | None, int, int]:
        """Checks shared by limit, market and stop: (account, side, lots)."""
        account = data.get("account")
        if account is not None and (not isinstance(account, str) or not account):
            raise _LineRejectedError("malformed", "account")
        side = _SIDES.get(data["side"]) if isinstance(data["side"], str) else None
        if side is None:
            raise _LineRejectedError("malformed", "side")
        return account, side, self._lots(data["qty"])

    def _fresh(self, oid: str) -> str:
        """``oid``, unless an earlier accepted order of the file had it (checked last)."""
        if oid in self._used:
            raise _LineRejectedError("duplicate_id", "id")
        return oid

    def _limit(self, oid: str, data: dict[str, Any]) -> None:
        account, side, lots = self._new_order(oid, data)
        price = self._ticks(data["price"], "price")
        tif = data.get("tif", "GTC")
        if tif not in ("GTC", "IOC", "FOK"):
            raise _LineRejectedError("malformed", "tif")
        post_only = data.get("post_only", False)
        if not isinstance(post_only, bool):
            raise _LineRejectedError("malformed", "post_only")
        self.engine.limit(self._fresh(oid), account, side, price, lots, TimeInForce(tif),
                          post_only)

    def _market(self, oid: str, data: dict[str, Any]) -> None:
        account, side, lots = self._new_order(oid, data)
        bound = data.get("price")
        protection = None if bound is None else self._ticks(bound, "price")
        self.engine.market(self._fresh(oid), account, side, lots, protection)

    def _stop(self, oid: str, data: dict[str, Any]) -> None:
        account, side, lots = self._new_order(oid, data)
        trigger = self._ticks(data["trigger"], "trigger")
        limit = data.get("price")
        price = None if limit is None else self._ticks(limit, "price")
        kind = data.get("kind", "stop_loss")
        if kind not in ("stop_loss", "take_profit"):
            raise _LineRejectedError("malformed", "kind")
        self.engine.stop(self._fresh(oid), account, side, trigger, lots, price, StopKind(kind))

    def _cancel(self, oid: str, data: dict[str, Any]) -> None:
        self.engine.cancel(oid)

    def _reduce(self, oid: str, data: dict[str, Any]) -> None:
        self.engine.reduce(oid, self._lots(data["qty"]))

    def _ticks(self, value: object, field: str) -> int:
        return self._steps(self.tick, value, field, "off_tick")

    def _lots(self, value: object) -> int:
        return self._steps(self.lot, value, "qty", "off_lot")

    @staticmethod
    def _steps(step: Increment, value: object, field: str, off_grid: str) -> int:
        if not isinstance(value, str):
            raise _LineRejectedError("malformed", field)
        try:
            return step.to_steps(value, field=field)
        except ValidationError as exc:
            reason = off_grid if exc.details.get("reason") == "off_grid" else "malformed"
            raise _LineRejectedError(reason, field) from None

    # ------------------------------------------------------------------ encoding

    def _encode(self, event: Event, line_no: int) -> str:
        fmt_qty = self.lot.format
        if event[0] == "trade":
            _, maker, taker, price, qty = event
            return _dump({"event": "trade", "maker": maker, "taker": taker,
                          "price": self.tick.format(price), "qty": fmt_qty(qty)})
        if event[0] == "cancelled":
            _, oid, remaining, reason = event
            return _dump({"event": "cancelled", "id": oid, "remaining": fmt_qty(remaining),
                          "reason": reason})
        if event[0] == "rejected":
            return self._rejected(event[1], event[2], line_no, _ENGINE_FIELDS.get(event[2]))
        if event[0] == "reduced":
            return _dump({"event": "reduced", "id": event[1], "remaining": fmt_qty(event[2])})
        return _dump({"event": event[0], "id": event[1]})

    @staticmethod
    def _rejected(oid: OrderId | None, reason: str, line_no: int, field: str | None) -> str:
        payload: dict[str, object] = {"event": "rejected", "id": oid, "reason": reason,
                                      "line": line_no}
        if field is not None:
            payload["field"] = field
        return _dump(payload)


def replay(
    lines: Iterable[str | bytes], *, tick: Increment, lot: Increment, mode: MatchingMode
) -> Iterator[str]:
    """Every output line of a replay of ``lines``, ending with the ``book`` line."""
    driver = ReplayDriver(tick, lot, mode)
    for line_no, line in enumerate(lines, start=1):
        yield from driver.feed(line_no, line)
    yield driver.book()
