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
    }
)
SERVER_PERMISSIONS: frozenset[str] = frozenset(
    {
        UNRESTRICTED,
        SERVER_MODIFY,
        SERVER_VIEW,
        LEDGER_VIEW,
        LEDGER_POST,
        "btcpay.user.canviewprofile",
        "btcpay.user.canmodifyprofile",
    }
)
KNOWN_PERMISSIONS = STORE_PERMISSIONS | SERVER_PERMISSIONS

# permission -> permissions it also grants (transitively closed below)
_IMPLIES: dict[str, frozenset[str]] = {
    UNRESTRICTED: KNOWN_PERMISSIONS,
    SERVER_MODIFY: KNOWN_PERMISSIONS - {UNRESTRICTED},
    SERVER_VIEW: frozenset({LEDGER_VIEW}),
    LEDGER_POST: frozenset({LEDGER_VIEW}),
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


@dataclass(frozen=True, slots=True)
class Permission:
    """One granted permission, optionally limited to one store."""

    name: str
    store_id: str | None = None

    @classmethod
    def parse(cls, text: str) -> Permission:
        """Parse ``name`` or ``name:storeId``, refusing unknown names."""
        name, _, store_id = text.partition(":")
        if name not in KNOWN_PERMISSIONS:
            raise ValidationError(f"unknown permission {name[:80]!r}", field="permissions")
        if store_id:
            if name not in STORE_PERMISSIONS:
                raise ValidationError(f"{name} cannot be limited to a store", field="permissions")
            if not _STORE_ID.fullmatch(store_id):
                raise ValidationError("invalid store id in permission", field="permissions")
        return cls(name, store_id or None)

    def __str__(self) -> str:
        return f"{self.name}:{self.store_id}" if self.store_id else self.name


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
    return parsed
