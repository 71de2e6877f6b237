"""Migration 0004 creates exactly the trading tables of ``tables.py`` (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dpgnode.adapters.storage import tables
from dpgnode.node import Node

pytestmark = pytest.mark.integration

TRADING = {t.name for t in tables.metadata.sorted_tables if t.name.startswith("trading_")}


def _concerns_trading(diff: object) -> bool:
    return any(name in repr(diff) for name in TRADING)


def test_migrated_trading_tables_match_the_metadata(any_node: Node) -> None:
    with any_node.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        drift = [d for d in compare_metadata(context, tables.metadata) if _concerns_trading(d)]

    assert {
        "trading_pairs", "trading_orders", "trading_trades", "trading_candles",
        "trading_positions",
    } == TRADING
    assert drift == []
