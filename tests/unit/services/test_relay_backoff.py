"""The relay's retry schedule: 1 s doubling per recorded failure, capped at 10 minutes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dpgnode.services.outbox import backoff


class TestBackoff:
    @pytest.mark.parametrize(
        ("attempts", "seconds"), [(0, 1), (1, 1), (2, 2), (3, 4), (4, 8), (10, 512)]
    )
    def test_delay_doubles_when_another_attempt_failed(self, attempts: int, seconds: int) -> None:
        assert backoff(attempts) == timedelta(seconds=seconds)

    @pytest.mark.parametrize("attempts", [11, 12, 50, 10_000])
    def test_delay_stays_at_ten_minutes_when_failures_go_on(self, attempts: int) -> None:
        assert backoff(attempts) == timedelta(minutes=10)

    def test_delay_never_shrinks_when_attempts_grow(self) -> None:
        delays = [backoff(n) for n in range(0, 100)]
        assert delays == sorted(delays)
