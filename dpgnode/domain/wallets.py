"""API wallets: one owner's balance in one asset, as ``/api/v1/wallets`` shows it.

A wallet (``wal_…``) is a named view over two ledger accounts of one owner in one asset:
``owner_type:owner_id:ASSET:available`` (spendable) and ``…:held`` (reserved by open holds:
orders, payouts). Its balance is those two accounts' balances; its transactions are the
postings on them. It holds no value of its own, so the ledger stays the single record of
money: a fiat wallet (USD, EUR, GBP…) and a crypto wallet (BTC, ETH…) differ only in the
asset. An owner with several currencies has one wallet per asset; ``(owner, asset)`` is
unique, so opening a wallet twice returns the first one.

Custody keychains (``kc_…``, ``dpg wallet create``) are the keys that receive and send the
coins on chain; see ``dpgnode.domain.custody.wallet``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from dpgnode.domain.ledger import AccountKind, AccountRef, OwnerType


@dataclass(frozen=True, slots=True)
class Wallet:
    """A named view over one owner's available and held accounts in one asset."""

    id: str
    owner_type: OwnerType
    owner_id: str
    asset: str
    label: str
    created_at: datetime

    @property
    def available(self) -> AccountRef:
        """The spendable account."""
        return AccountRef(self.owner_type, self.owner_id, self.asset, AccountKind.AVAILABLE)

    @property
    def held(self) -> AccountRef:
        """The account carrying value reserved by open holds."""
        return AccountRef(self.owner_type, self.owner_id, self.asset, AccountKind.HELD)

    @property
    def store_id(self) -> str | None:
        """The store owning the wallet, for store-scoped permissions; ``None`` otherwise."""
        return self.owner_id if self.owner_type is OwnerType.STORE else None


@dataclass(frozen=True, slots=True)
class WalletBalance:
    """A wallet's balance: available to spend, held for pending operations, and their sum."""

    wallet: Wallet
    available: int
    held: int

    @property
    def total(self) -> int:
        """Available plus held."""
        return self.available + self.held


def transfer_key(wallet_id: str, idempotency_key: str) -> str:
    """The ledger idempotency key of a wallet-to-wallet transfer.

    Namespaced by the source wallet so a client's key cannot collide with another
    wallet's transfers or with other ledger entries. A key too long to fit the ledger's 255
    characters is replaced by its SHA-256 (never truncated: two keys sharing a prefix must
    stay two keys).
    """
    key = f"wallet-transfer:{wallet_id}:{idempotency_key}"
    if len(key) <= 255:
        return key
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
    return f"wallet-transfer:{wallet_id}:sha256:{digest}"
