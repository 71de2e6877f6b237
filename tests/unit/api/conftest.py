"""API test fixtures: a real node on a SQLite file in ``tmp_path`` behind Litestar's TestClient.

``api`` gives the client, the node, the clock and five callers: ``admin`` (unrestricted),
``store_a`` / ``store_b`` (may modify only their own store), ``readonly`` (views every
store and the ledger) and ``anonymous`` (no key). Rate limits are set high so only the
rate-limit tests meet them (they build their own app with ``make_api``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.api.app import create_app
from dpgnode.domain.access import LEDGER_VIEW, STORE_MODIFY, STORE_VIEW, UNRESTRICTED
from dpgnode.node import Node, build_node
from dpgnode.services.access import StoreFields
from dpgnode.settings import load_settings

HIGH_LIMITS = {"rate_limit_per_key": 1_000_000, "rate_limit_per_ip": 1_000_000}


@dataclass
class Api:
    client: TestClient[Any]
    node: Node
    clock: FixedClock
    store_a: str = ""
    store_b: str = ""
    secrets: dict[str, str] = field(default_factory=dict)

    def auth(self, who: str, **extra: str) -> dict[str, str]:
        """Headers for caller ``who`` (``anonymous`` sends no Authorization)."""
        headers = dict(extra)
        if who != "anonymous":
            headers["Authorization"] = f"token {self.secrets[who]}"
        return headers

    def key(self, *permissions: str) -> str:
        """A new key with ``permissions``; returns its secret."""
        return self.node.access.create_api_key("test", list(permissions)).secret


@dataclass(frozen=True)
class Seed:
    """A migrated database with the callers' stores and keys, copied for each test."""

    data_dir: Path
    store_a: str
    store_b: str
    secrets: dict[str, str]


@pytest.fixture(scope="session")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    # Migrating and issuing keys costs a few durable commits; copying one file is cheaper.
    data_dir = tmp_path_factory.mktemp("api-seed")
    node = build_node(load_settings(data_dir), clock=FixedClock(), upgrade=True)
    try:
        store_a = node.access.create_store(StoreFields(name="Shop A")).id
        store_b = node.access.create_store(StoreFields(name="Shop B")).id

        def key(*permissions: str) -> str:
            return node.access.create_api_key("test", list(permissions)).secret

        secrets = {
            "admin": key(UNRESTRICTED),
            "store_a": key(f"{STORE_MODIFY}:{store_a}"),
            "store_b": key(f"{STORE_MODIFY}:{store_b}"),
            "readonly": key(STORE_VIEW, LEDGER_VIEW),
        }
    finally:
        node.close()
    return Seed(data_dir, store_a, store_b, secrets)


@pytest.fixture
def make_api(
    tmp_path: Path, clock: FixedClock, seed: Seed
) -> Iterator[Callable[..., Api]]:
    """Builds an app over a fresh copy of the seed; ``make_api(rate_limit_per_ip=2)`` sets
    API settings."""
    opened: list[tuple[TestClient[Any], Node]] = []

    def factory(**api_settings: Any) -> Api:
        data_dir = tmp_path / f"node{len(opened)}"
        shutil.copytree(seed.data_dir, data_dir)
        settings = load_settings(data_dir, overrides={"api": {**HIGH_LIMITS, **api_settings}})
        node = build_node(settings, clock=clock)
        client: TestClient[Any] = TestClient(create_app(node))
        client.__enter__()
        opened.append((client, node))
        return Api(client, node, clock, seed.store_a, seed.store_b, dict(seed.secrets))

    yield factory
    for client, node in reversed(opened):
        client.__exit__(None, None, None)
        node.close()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    built: Api = make_api()
    return built
