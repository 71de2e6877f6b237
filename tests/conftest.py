"""Shared fixtures: nodes over a real SQLite file and over a real PostgreSQL database.

- ``clock``: a :class:`FixedClock` the test moves by hand;
- ``node``: a migrated node on a SQLite file in ``tmp_path``;
- ``backend`` / ``database_url`` / ``any_node``: the same, parametrized over ``sqlite`` and
  ``postgres``; the PostgreSQL case gets a fresh database per test (dropped at teardown, after
  the node is closed) and carries the ``integration`` and ``postgres`` markers;
- ``make_node``: opens further nodes on the same database (two writers, like two processes);
  every node it opens is closed at teardown.

Fixtures stay light: building a node is a migration and two engines, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.adapters.storage import tables
from dpgnode.domain.ledger import GENESIS_HASH
from dpgnode.node import Node, build_node
from dpgnode.settings import load_settings
from tests.support.postgres import (
    create_database,
    drop_database,
    require_postgres,
    unique_database_name,
)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
]

def open_node(url: str, data_dir: Path, clock: FixedClock, *, upgrade: bool = True) -> Node:
    """A node on ``url`` (SQLite file or PostgreSQL database) with ``clock``."""
    settings = load_settings(data_dir, overrides={"database": {"url": url}})
    return build_node(settings, clock=clock, upgrade=upgrade)


def wipe(node: Node) -> None:
    """Empty every table and reset the ledger head, as on a freshly migrated database.

    Cheaper than a new database per Hypothesis example; runs on its own connection while the
    node's writer is idle (callers make sure nothing is in flight).
    """
    with node.writer_engine.begin() as conn:
        # Children first, so deleting never trips a foreign key.
        for table in reversed(tables.metadata.sorted_tables):
            # The custody audit log is append-only in the database itself (triggers of
            # migration 0003); nothing the callers check reads it.
            if table is not tables.ledger_head and not table.name.startswith("custody_audit"):
                conn.execute(delete(table))
        conn.execute(
            update(tables.ledger_head)
            .where(tables.ledger_head.c.id == 1)
            .values(seq=0, hash=GENESIS_HASH)
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "long_push: a long test of the push run; spread through the run so workers balance",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave ``slow`` tests out unless a ``-m`` expression is given; spread long ones.

    ``slow`` tests (nightly long forms) are deselected rather than skipped: a push run reports
    no skips, and ``pytest -m slow`` (nightly) runs exactly the long forms. ``long_push``
    tests are spread evenly through the run, so they end up on different workers.
    """
    if not config.getoption("markexpr", ""):
        slow = [item for item in items if item.get_closest_marker("slow") is not None]
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = [item for item in items if item.get_closest_marker("slow") is None]
    _spread(items, [item for item in items if item.get_closest_marker("long_push")])


def _spread(items: list[pytest.Item], long: list[pytest.Item]) -> None:
    """Place ``long`` evenly through the first half of ``items``.

    pytest-xdist hands out consecutive chunks, so spaced-out long tests land on different
    workers instead of piling up on one, and short tests fill the end of the run.
    """
    if not long:
        return
    rest = [item for item in items if item not in long]
    step = len(items) / len(long) / 2
    for index, item in enumerate(long):
        rest.insert(round(index * step), item)
    items[:] = rest


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+pysqlite:///{tmp_path / 'dpg.sqlite3'}"


@pytest.fixture
def node(sqlite_url: str, tmp_path: Path, clock: FixedClock) -> Iterator[Node]:
    built = open_node(sqlite_url, tmp_path, clock)
    yield built
    built.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def database_url(backend: str, sqlite_url: str) -> Iterator[str]:
    """An empty database of ``backend``; a PostgreSQL one is dropped after the test."""
    if backend == "sqlite":
        yield sqlite_url
        return
    admin_url = require_postgres()
    name = unique_database_name("t")
    url = create_database(admin_url, name)
    yield url
    drop_database(admin_url, name)


@pytest.fixture
def make_node(
    database_url: str, tmp_path: Path, clock: FixedClock
) -> Iterator[Callable[..., Node]]:
    """Opens nodes on ``database_url``; the first call migrates, later ones share the schema."""
    opened: list[Node] = []

    def factory(*, upgrade: bool = True, node_clock: FixedClock | None = None) -> Node:
        built = open_node(database_url, tmp_path, node_clock or clock, upgrade=upgrade)
        opened.append(built)
        return built

    yield factory
    for built in reversed(opened):
        built.close()


@pytest.fixture
def any_node(make_node: Callable[..., Node]) -> Node:
    node: Node = make_node()
    return node
