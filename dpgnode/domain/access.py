"""API keys and Greenfield-style permissions.

Permission strings follow BTCPay's Greenfield API (``btcpay.store.canviewinvoices``); a store
permission may be limited to one store by appending ``:<storeId>``. Some permissions imply
others (``canmodifystoresettings`` covers every store permission, ``canmodifyinvoices``
covers viewing and creating invoices); ``unrestricted`` covers everything. Deciding whether
a key may act is this module's job and nobody else's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from dpgnode.errors import ValidationError

UNRESTRICTED = "unrestricted"
SERVER_MODIFY = "btcpay.server.canmodifyserversettings"
SERVER_VIEW = "btcpay.server.canviewserversettings"
STORE_MODIFY = "btcpay.store.canmodifystoresettings"
STORE_VIEW = "btcpay.store.canviewstoresettings"
LEDGER_VIEW = "dpg.ledger.canview"
LEDGER_POST = "dpg.ledger.canpost"
WALLETS_VIEW = "dpg.wallets.view"
"""API wallets: balances, transactions and statements (``:storeId`` limits it to one store)."""
WALLETS_TRANSFER = "dpg.wallets.transfer"
"""API wallets: open wallets and transfer from them (implies viewing)."""
TRADING_VIEW = "dpg.trading.view"
TRADING_TRADE = "dpg.trading.trade"
CONVERSION_LIMITS_MANAGE = "dpg.conversion.limits.manage"
"""Operators: read any user's conversion limits and set them (users convert with the
trading permissions bound to them)."""
TRADING_MANAGE = "dpg.trading.manage"
"""Operators: halt and resume trading pairs (implies viewing market data)."""
CUSTODY_VIEW = "dpg.custody.view"
"""Admins: the payout queue with the policy that applies, and address pools' gaps."""
CUSTODY_APPROVE = "dpg.custody.approve"
"""Admins: approve or reject payouts, as the operator whose token comes with the request
(implies viewing custody)."""
EVENTS_VIEW = "dpg.events.view"
"""Admins: read the node's event stream (the outbox) and its relay's progress."""
METRICS_VIEW = "dpg.metrics.view"
"""Monitoring: scrape ``/metrics`` (Prometheus) and nothing else; give it its own key."""
BLOCKCHAIN_VIEW = "dpg.blockchain.view"
"""``/api/v1/blockchain``: issued addresses' balances (ledger and chain), transactions the
node knows, fee estimates, chain incidents."""
BLOCKCHAIN_ADDRESSES = "dpg.blockchain.addresses"
"""``/api/v1/blockchain``: issue receiving addresses of key accounts (implies viewing)."""
BLOCKCHAIN_SEND = "dpg.blockchain.send"
"""``/api/v1/blockchain``: request payouts, as the operator whose token comes with the
request; an operator approves them where the signer is (implies viewing)."""

STORE_PERMISSIONS: frozenset[str] = frozenset(
    {
        STORE_MODIFY,
        STORE_VIEW,
        "btcpay.store.canviewinvoices",
        "btcpay.store.cancreateinvoice",
        "btcpay.store.canmodifyinvoices",
        "btcpay.store.webhooks.canmodifywebhooks",
        "btcpay.store.canviewpullpayments",
        "btcpay.store.cancreatepullpayments",
        "btcpay.store.canmanagepullpayments",
        "btcpay.store.cancreatenonapprovedpullpayments",
        "btcpay.store.canviewpayouts",
        "btcpay.store.canmanagepayouts",
        "btcpay.store.canviewreports",
        "btcpay.store.canviewpaymentrequests",
        "btcpay.store.canmodifypaymentrequests",
        WALLETS_VIEW,
        WALLETS_TRANSFER,
    }
)
SERVER_PERMISSIONS: frozenset[str] = frozenset(
    {
        UNRESTRICTED,
        SERVER_MODIFY,
        SERVER_VIEW,
        LEDGER_VIEW,
        LEDGER_POST,
        CONVERSION_LIMITS_MANAGE,
        TRADING_MANAGE,
        CUSTODY_VIEW,
        CUSTODY_APPROVE,
        EVENTS_VIEW,
        METRICS_VIEW,
        BLOCKCHAIN_VIEW,
        BLOCKCHAIN_ADDRESSES,
        BLOCKCHAIN_SEND,
        "btcpay.user.canviewprofile",
        "btcpay.user.canmodifyprofile",
    }
)
USER_PERMISSIONS: frozenset[str] = frozenset({TRADING_VIEW, TRADING_TRADE})
"""Trading permissions. ``name:userId`` binds the key to the trading user ``userId``: its
orders, trades and balances are those of the ledger owner ``user:<userId>``. A key may be
bound to one user at most; unbound, the permission reaches market data only."""
KNOWN_PERMISSIONS = STORE_PERMISSIONS | SERVER_PERMISSIONS | USER_PERMISSIONS

# permission -> permissions it also grants (transitively closed below)
_IMPLIES: dict[str, frozenset[str]] = {
    UNRESTRICTED: KNOWN_PERMISSIONS,
    SERVER_MODIFY: KNOWN_PERMISSIONS - {UNRESTRICTED},
    SERVER_VIEW: frozenset({LEDGER_VIEW}),
    LEDGER_POST: frozenset({LEDGER_VIEW, WALLETS_TRANSFER}),
    LEDGER_VIEW: frozenset({WALLETS_VIEW}),
    WALLETS_TRANSFER: frozenset({WALLETS_VIEW}),
    TRADING_TRADE: frozenset({TRADING_VIEW}),
    CONVERSION_LIMITS_MANAGE: frozenset({TRADING_VIEW}),
    TRADING_MANAGE: frozenset({TRADING_VIEW}),
    CUSTODY_APPROVE: frozenset({CUSTODY_VIEW}),
    BLOCKCHAIN_ADDRESSES: frozenset({BLOCKCHAIN_VIEW}),
    BLOCKCHAIN_SEND: frozenset({BLOCKCHAIN_VIEW}),
    STORE_MODIFY: STORE_PERMISSIONS,
    "btcpay.store.canmodifyinvoices": frozenset(
        {"btcpay.store.canviewinvoices", "btcpay.store.cancreateinvoice"}
    ),
    "btcpay.store.canmanagepullpayments": frozenset(
        {
            "btcpay.store.canviewpullpayments",
            "btcpay.store.cancreatepullpayments",
            "btcpay.store.cancreatenonapprovedpullpayments",
        }
    ),
    "btcpay.store.cancreatepullpayments": frozenset(
        {"btcpay.store.cancreatenonapprovedpullpayments"}
    ),
    "btcpay.store.canmanagepayouts": frozenset({"btcpay.store.canviewpayouts"}),
    "btcpay.store.canmodifypaymentrequests": frozenset({"btcpay.store.canviewpaymentrequests"}),
    "btcpay.user.canmodifyprofile": frozenset({"btcpay.user.canviewprofile"}),
}
_STORE_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_USER_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")  # a ledger owner id


@dataclass(frozen=True, slots=True)
class Permission:
    """One granted permission, optionally limited to one store (or bound to one user)."""

    name: str
    store_id: str | None = None
    user_id: str | None = None
    """The trading user a ``USER_PERMISSIONS`` permission binds the key to."""

    @classmethod
    def parse(cls, text: str) -> Permission:
        """Parse ``name``, ``name:storeId`` or ``name:userId``, refusing unknown names."""
        name, _, store_id = text.partition(":")
        if name not in KNOWN_PERMISSIONS:
            raise ValidationError(f"unknown permission {name[:80]!r}", field="permissions")
        if store_id and name in USER_PERMISSIONS:
            if not _USER_ID.fullmatch(store_id):
                raise ValidationError("invalid user id in permission", field="permissions")
            return cls(name, user_id=store_id)
        if store_id:
            if name not in STORE_PERMISSIONS:
                raise ValidationError(f"{name} cannot be limited to a store", field="permissions")
            if not _STORE_ID.fullmatch(store_id):
                raise ValidationError("invalid store id in permission", field="permissions")
        return cls(name, store_id or None)

    def __str__(self) -> str:
        scope = self.store_id or self.user_id
        return f"{self.name}:{scope}" if scope else self.name


def _closure(name: str) -> frozenset[str]:
    result = {name}
    frontier = [name]
    while frontier:
        for implied in _IMPLIES.get(frontier.pop(), frozenset()):
            if implied not in result:
                result.add(implied)
                frontier.append(implied)
    return frozenset(result)


_CLOSURES = {name: _closure(name) for name in KNOWN_PERMISSIONS}


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key: the secret itself is never kept, only its SHA-256 digest."""

    id: str
    label: str
    permissions: tuple[Permission, ...]
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Whether the key has not been revoked."""
        return self.revoked_at is None

    def allows(self, permission: str, store_id: str | None = None) -> bool:
        """Whether this key grants ``permission``, for ``store_id`` when the route has one."""
        if not self.active:
            return False
        for granted in self.permissions:
            if permission not in _CLOSURES[granted.name]:
                continue
            if granted.store_id is None or granted.store_id == store_id:
                return True
        return False

    @property
    def trading_user(self) -> str | None:
        """The trading user this key acts for (``dpg.trading.*:<userId>``), if bound to one."""
        return next((g.user_id for g in self.permissions if g.user_id is not None), None)

    def acting_user(self, permission: str) -> str | None:
        """The trading user for whom this key holds ``permission`` through a bound grant.

        Only the grant bound to the user counts: a key with ``dpg.trading.view:alice`` and an
        unbound ``dpg.trading.trade`` (market data) may read alice's orders but not trade as
        her, so ``acting_user(TRADING_TRADE)`` is ``None`` there. Unbound grants, even
        ``unrestricted``, never make a key act for a user. ``None`` as well once revoked.
        """
        if not self.active:
            return None
        return next(
            (
                g.user_id
                for g in self.permissions
                if g.user_id is not None and permission in _CLOSURES[g.name]
            ),
            None,
        )

    def visible_store_ids(self) -> frozenset[str] | None:
        """Stores this key may see; ``None`` means every store."""
        stores: set[str] = set()
        for granted in self.permissions:
            if granted.store_id is None:
                return None
            stores.add(granted.store_id)
        return frozenset(stores)


def parse_permissions(texts: Iterable[str]) -> tuple[Permission, ...]:
    """Parse and de-duplicate a list of permission strings; at least one is required."""
    parsed = tuple(dict.fromkeys(Permission.parse(text) for text in texts))
    if not parsed:
        raise ValidationError("at least one permission is required", field="permissions")
    if len({p.user_id for p in parsed if p.user_id is not None}) > 1:
        raise ValidationError("a key may act for one trading user only", field="permissions")
    return parsed
