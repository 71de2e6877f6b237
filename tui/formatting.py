"""Small, pure helpers to show the API's values: times, amounts, ids.

Amounts arrive as decimal strings and stay exact: arithmetic uses :class:`Decimal`, never
floats. Times are shown in UTC, as the node records them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation


def when(unix: int | None) -> str:
    """``2026-01-01 00:00:00`` (UTC) from unix seconds; ``-`` for none."""
    if not unix:
        return "-"
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S")


def clock(unix: int) -> str:
    """``HH:MM:SS`` (UTC), for tapes and streams."""
    return datetime.fromtimestamp(unix, UTC).strftime("%H:%M:%S")


def dec(text: str | None) -> Decimal:
    """The decimal a string stands for; zero for none or garbage (display only)."""
    if not text:
        return Decimal(0)
    try:
        return Decimal(text)
    except InvalidOperation:
        return Decimal(0)


def total(values: Iterable[str]) -> Decimal:
    return sum((dec(v) for v in values), Decimal(0))


def amount(value: Decimal, places: int | None = None) -> str:
    """A decimal as plain text (no exponent), optionally with fixed places."""
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places))
    text = format(value, "f")
    return text


def short(identifier: str, keep: int = 6) -> str:
    """``po_…c3f9a1``: the prefix and the tail of an id, for narrow columns."""
    prefix, _, rest = identifier.partition("_")
    if not rest or len(rest) <= keep:
        return identifier
    return f"{prefix}_…{rest[-keep:]}"


def elide(text: str, width: int) -> str:
    """``bcrt1qw508…kygt080``: the head and tail of a long value in ``width`` cells."""
    if len(text) <= width:
        return text
    tail = (width - 1) // 3
    return f"{text[: width - 1 - tail]}…{text[-tail:]}"


def bar(fraction: Decimal, width: int) -> str:
    """A horizontal bar of ``width`` cells filled to ``fraction`` (0..1), in eighths."""
    if width <= 0:
        return ""
    fraction = min(max(fraction, Decimal(0)), Decimal(1))
    eighths = int((fraction * width * 8).to_integral_value())
    full, rest = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[rest] if rest else ""
    return ("█" * full + partial).ljust(width)
