"""Trading permissions: a key bound to one trading user, and what each permission grants."""

from __future__ import annotations

import pytest

from dpgnode.domain.access import (
    TRADING_TRADE,
    TRADING_VIEW,
    UNRESTRICTED,
    Permission,
    parse_permissions,
)
from dpgnode.errors import ValidationError
from tests import factories as f


def test_trading_permission_binds_the_key_to_a_user_when_scoped() -> None:
    permission = Permission.parse(f"{TRADING_TRADE}:alice.1")

    assert permission == Permission(TRADING_TRADE, user_id="alice.1")
    assert str(permission) == f"{TRADING_TRADE}:alice.1"


@pytest.mark.parametrize("user", ["al ice", "a/b", "x" * 65])
def test_malformed_user_is_refused(user: str) -> None:
    with pytest.raises(ValidationError, match="invalid user id"):
        Permission.parse(f"{TRADING_VIEW}:{user}")


def test_a_key_acts_for_one_trading_user_at_most() -> None:
    with pytest.raises(ValidationError, match="one trading user"):
        parse_permissions([f"{TRADING_TRADE}:alice", f"{TRADING_VIEW}:bob"])
    assert len(parse_permissions([f"{TRADING_TRADE}:alice", f"{TRADING_VIEW}:alice"])) == 2


def test_trade_implies_view_and_the_key_names_its_user() -> None:
    trader = f.api_key(f"{TRADING_TRADE}:alice")
    viewer = f.api_key(f"{TRADING_VIEW}:bob")
    operator = f.api_key(UNRESTRICTED)

    assert trader.allows(TRADING_VIEW)
    assert trader.allows(TRADING_TRADE)
    assert not viewer.allows(TRADING_TRADE)
    assert (trader.trading_user, viewer.trading_user, operator.trading_user) == (
        "alice", "bob", None
    )
    assert operator.allows(TRADING_TRADE)


def test_acting_user_is_the_user_whose_bound_grant_carries_the_permission() -> None:
    mixed = f.api_key(f"{TRADING_VIEW}:alice", TRADING_TRADE)
    trader = f.api_key(f"{TRADING_TRADE}:alice")
    revoked = f.api_key(f"{TRADING_TRADE}:alice", revoked_at=f.T0)

    assert mixed.allows(TRADING_TRADE)  # the unbound grant still reaches market data
    assert (mixed.acting_user(TRADING_VIEW), mixed.acting_user(TRADING_TRADE)) == ("alice", None)
    assert (trader.acting_user(TRADING_VIEW), trader.acting_user(TRADING_TRADE)) == (
        "alice", "alice"
    )
    assert f.api_key(UNRESTRICTED).acting_user(TRADING_TRADE) is None
    assert revoked.acting_user(TRADING_VIEW) is None
