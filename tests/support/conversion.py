"""Helpers for conversion tests: fixed-rate settings and funding accounts through the ledger."""

from __future__ import annotations

from typing import Any

from dpgnode.domain.ledger import AccountKind, AccountRef, EntryDraft, OwnerType, Posting
from dpgnode.domain.money import parse_units
from dpgnode.node import Node
from tests import factories as f

RATES = [
    {"base": "BTC", "quote": "USD", "rate": "60000"},
    {"base": "ETH", "quote": "USD", "rate": "3000"},
    {"base": "EUR", "quote": "USD", "rate": "1.08"},
]


def conversion_settings(**overrides: Any) -> dict[str, Any]:
    """Fixed BTC/USD 60000, ETH/USD 3000, EUR/USD 1.08; 0.5 % spread, 0.1 % fee; 30 s quotes."""
    return {
        "fixed_rates": RATES,
        "spread_bps": 50,
        "fee_bps": 10,
        "quote_lifetime_seconds": 30,
        **overrides,
    }


def user(owner: str, asset: str) -> AccountRef:
    return AccountRef(OwnerType.USER, owner, asset, AccountKind.AVAILABLE)


def inventory(asset: str, operator: str = "op") -> AccountRef:
    return AccountRef(OwnerType.OPERATOR, operator, asset, AccountKind.INVENTORY)


def fund(node: Node, account: AccountRef, amount: str) -> None:
    """Move ``amount`` into ``account`` from the operator's world account."""
    units = parse_units(amount, node.assets[account.asset].decimals)
    node.ledger.post(
        EntryDraft(
            f.key("fund"), (Posting(f.world(account.asset), -units), Posting(account, units))
        )
    )


def balance(node: Node, account: AccountRef) -> str:
    found = node.queries.account(account)
    return node.assets.format(0 if found is None else found.balance, account.asset)
