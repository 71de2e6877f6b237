"""Shared by the backup tests: a cheap passphrase key and a ledger writer."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from dpgnode.adapters.backup.keys import PassphraseKey
from dpgnode.domain.ledger import AccountKind, AccountRef, EntryDraft, OwnerType, Posting
from dpgnode.node import Node
from tests.support.backup import cheap_key

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def key() -> PassphraseKey:
    return cheap_key(PASSPHRASE)


def deposit(node: Node, key: str, user: str, units: int, asset: str = "BTC") -> None:
    world = AccountRef(OwnerType.OPERATOR, "op", asset, AccountKind.WORLD)
    account = AccountRef(OwnerType.USER, user, asset, AccountKind.AVAILABLE)
    node.ledger.post(EntryDraft(key, (Posting(world, -units), Posting(account, units))))


@dataclass
class Writers:
    """Threads posting entries until stopped; ``acked`` grows as each post returns."""

    node: Node
    threads: int = 6
    acked: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _running: list[threading.Thread] = field(default_factory=list)

    def _run(self, thread: int) -> None:
        index = 0
        try:
            while not self._stop.is_set():
                key = f"live-{thread}-{index}"
                deposit(self.node, key, f"u{thread}", 1000 + index, "ETH" if index % 2 else "BTC")
                with self._lock:
                    self.acked.append(key)
                index += 1
        except BaseException as exc:  # surfaced by stop()
            self.errors.append(exc)

    def start(self) -> None:
        for thread in range(self.threads):
            worker = threading.Thread(target=self._run, args=(thread,), daemon=True)
            worker.start()
            self._running.append(worker)

    def snapshot(self) -> set[str]:
        with self._lock:
            return set(self.acked)

    def count(self) -> int:
        with self._lock:
            return len(self.acked)

    def stop(self) -> None:
        self._stop.set()
        for worker in self._running:
            worker.join(30)
        assert not self.errors, self.errors
