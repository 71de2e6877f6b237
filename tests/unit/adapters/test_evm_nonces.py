"""``NonceReservations``: concurrent sends of one address never share a nonce, and none is lost."""

from __future__ import annotations

import threading

import pytest

from dpgnode.adapters.chains.evm_nonces import NonceReservations
from dpgnode.errors import ValidationError

SENDER = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


class Pending:
    def __init__(self, count: int) -> None:
        self.count = count

    def __call__(self, sender: str) -> int:
        return self.count


def test_concurrent_reservations_get_distinct_consecutive_nonces() -> None:
    nonces = NonceReservations(Pending(7))
    taken: list[int] = []
    lock = threading.Lock()

    def reserve() -> None:
        reservation = nonces.reserve(SENDER)
        with lock:
            taken.append(reservation.nonce)
        reservation.commit()

    threads = [threading.Thread(target=reserve) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == list(range(7, 57))


def test_released_nonce_reused_so_no_gap_is_left() -> None:
    nonces = NonceReservations(Pending(3))
    with nonces.reserve(SENDER) as first:
        with nonces.reserve(SENDER.lower()) as second:  # one sender, whatever the case
            second.commit()
        assert (first.nonce, second.nonce) == (3, 4)
    assert nonces.reserve(SENDER).nonce == 3  # the failed send's nonce is free again


def test_committed_nonce_held_until_the_node_counts_it() -> None:
    pending = Pending(3)
    nonces = NonceReservations(pending)
    nonces.reserve(SENDER).commit()
    second = nonces.reserve(SENDER)
    assert second.nonce == 4  # 3 is broadcast but not yet counted by the node
    second.commit()
    assert nonces.held(SENDER) == {3, 4}
    pending.count = 5  # the node saw both transactions
    assert nonces.reserve(SENDER).nonce == 5
    assert nonces.held(SENDER) == {5}


def test_floor_skips_nonces_taken_elsewhere() -> None:
    assert NonceReservations(Pending(2)).reserve(SENDER, floor=9).nonce == 9


def test_invalid_sender_refused() -> None:
    with pytest.raises(ValidationError):
        NonceReservations(Pending(0)).reserve("0x123")
