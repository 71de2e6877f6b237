from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """Source of the current time for every expiry, retention window and retry schedule.

    Contract: ``now()`` returns an aware UTC datetime and never goes backwards within one
    process. Nothing outside ``adapters`` may call ``datetime.now()``.
    """

    def now(self) -> datetime:
        """The current time, aware and in UTC."""
        ...
