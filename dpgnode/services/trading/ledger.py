"""Trading's users in the ledger: the account a trading user holds in each asset."""

from __future__ import annotations

from dpgnode.domain.ledger import AccountKind, AccountRef, OwnerType


def user_account(user_id: str, asset: str, kind: AccountKind = AccountKind.AVAILABLE) -> AccountRef:
    """The trading user's account of ``kind`` in ``asset`` (ledger owner ``user:<id>``)."""
    return AccountRef(OwnerType.USER, user_id, asset, kind)
