"""The PostgreSQL test support really gives a usable, isolated database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, MetaData, Numeric, Table, create_engine, insert, select, text

from tests.support.postgres import (
    create_database,
    drop_database,
    require_postgres,
    unique_database_name,
)

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

# The largest uint256 needs 78 digits; amounts are stored as NUMERIC(78,0) and must not lose a unit.
MAX_78_DIGITS = 10**78 - 1


@pytest.fixture
def database_url() -> Iterator[str]:
    admin_url = require_postgres()
    name = unique_database_name("support")
    url = create_database(admin_url, name)
    yield url
    drop_database(admin_url, name)


def test_fresh_database_accepts_connections_and_keeps_78_digit_integers(database_url: str) -> None:
    assert database_url.startswith("postgresql+psycopg://")
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(text("select 1")).scalar_one() == 1
            assert conn.execute(text("select current_database()")).scalar_one() in database_url

            amounts = Table("amounts", MetaData(), Column("value", Numeric(78, 0)))
            amounts.create(conn)
            conn.execute(insert(amounts), [{"value": MAX_78_DIGITS}, {"value": -MAX_78_DIGITS}])
            stored = conn.execute(select(amounts.c.value).order_by(amounts.c.value)).scalars()
            values = list(stored)
        assert values == [-MAX_78_DIGITS, MAX_78_DIGITS]
        assert all(int(v) == v for v in values)
        assert int(values[1]) == MAX_78_DIGITS
    finally:
        engine.dispose()
