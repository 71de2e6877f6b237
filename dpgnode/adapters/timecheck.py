"""The local clock against an HTTP server's ``Date`` header (``doctor.time_url``).

A ``Date`` header has one-second resolution and is truncated, so the true time at the
server lies in [Date, Date + 1 s): its centre is compared with the midpoint of the request,
and the uncertainty is half a second plus half the round trip. Good enough to catch a clock
that is minutes off, which is what breaks webhook signatures and expiries; NTP itself is
not spoken here.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import httpx

from dpgnode.errors import UnavailableError

_TIMEOUT_S = 5.0


def http_date_offset(url: str, *, timeout: float = _TIMEOUT_S) -> tuple[float, float]:
    """``(server minus local, uncertainty)`` in seconds from ``url``'s ``Date`` header."""
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            client.head(url)  # the connection (and TLS) first: then the round trip is small
            before = time.time()
            response = client.head(url)
            after = time.time()
    except httpx.HTTPError as exc:
        raise UnavailableError(f"cannot reach {url}: {type(exc).__name__}") from exc
    header = response.headers.get("date")
    if not header:
        raise UnavailableError(f"{url} sent no Date header")
    try:
        stamp = parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError) as exc:
        raise UnavailableError(f"{url} sent an unreadable Date header") from exc
    return stamp + 0.5 - (before + after) / 2, 0.5 + (after - before) / 2
