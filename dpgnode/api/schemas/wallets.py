"""Wallet bodies. A wallet is one owner's balance in one asset; amounts are decimal strings."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from dpgnode.api.schemas.base import Input, Output
from dpgnode.api.schemas.ledger import StatementLineData
from dpgnode.domain.ledger import OwnerType
from dpgnode.domain.money import AssetRegistry
from dpgnode.domain.wallets import Wallet, WalletBalance
from dpgnode.ports.queries import StatementLine
from dpgnode.ports.wallets import WalletPosting


class OpenWalletRequest(Input):
    owner_type: OwnerType
    """``store``, ``user`` or ``operator``; a key limited to stores may open only its own."""
    owner_id: str
    asset: str
    label: str | None = None


class TransferRequest(Input):
    to_wallet_id: str
    """Destination wallet, in the same asset."""
    amount: str
    """Decimal string in the asset's units; positive."""
    memo: str | None = None
    idempotency_key: str | None = None
    """Identifies the transfer for ever; defaults to the ``Idempotency-Key`` header."""


class WalletData(Output):
    id: str
    owner_type: str
    owner_id: str
    asset: str
    label: str
    created_time: int
    """Unix seconds."""

    @classmethod
    def of(cls, wallet: Wallet) -> WalletData:
        return cls(
            id=wallet.id, owner_type=str(wallet.owner_type), owner_id=wallet.owner_id,
            asset=wallet.asset, label=wallet.label,
            created_time=int(wallet.created_at.timestamp()),
        )


class BalanceData(Output):
    wallet_id: str
    asset: str
    available: str
    """Spendable now."""
    held: str
    """Reserved by open holds (orders, payouts)."""
    total: str

    @classmethod
    def of(cls, balance: WalletBalance, assets: AssetRegistry) -> BalanceData:
        asset = balance.wallet.asset
        return cls(
            wallet_id=balance.wallet.id, asset=asset,
            available=assets.format(balance.available, asset),
            held=assets.format(balance.held, asset),
            total=assets.format(balance.total, asset),
        )


class TransactionData(Output):
    entry_id: str
    seq: int
    created_time: int
    kind: str
    memo: str
    account: str
    """``available`` or ``held``."""
    amount: str
    """Signed: positive credits the wallet's account, negative debits it."""


class TransactionPage(Output):
    wallet_id: str
    data: list[TransactionData]
    next: str | None
    """Pass as ``before`` for the next (older) page; null on the last page."""

    @classmethod
    def of(
        cls, wallet: Wallet, postings: Sequence[WalletPosting], next_before: int | None,
        assets: AssetRegistry,
    ) -> TransactionPage:
        return cls(
            wallet_id=wallet.id,
            data=[
                TransactionData(
                    entry_id=p.entry_id, seq=p.seq, created_time=int(p.created_at.timestamp()),
                    kind=p.kind, memo=p.memo, account=str(p.account.kind),
                    amount=assets.format(p.units, wallet.asset),
                )
                for p in postings
            ],
            next=None if next_before is None else str(next_before),
        )


class TransferData(Output):
    entry_id: str
    seq: int
    from_wallet_id: str
    to_wallet_id: str
    asset: str
    amount: str
    memo: str
    idempotency_key: str
    created_time: int




class WalletStatementData(Output):
    wallet_id: str
    asset: str
    from_: int | None = msgspec.field(name="from")
    to: int | None
    opening_balance: str
    closing_balance: str
    lines: list[StatementLineData]
    """Postings on the available balance, oldest first, with the balance after each."""

    @classmethod
    def of(
        cls, wallet: Wallet, span: tuple[int | None, int | None], opening: int,
        lines: Sequence[StatementLine], assets: AssetRegistry,
    ) -> WalletStatementData:
        def text(units: int) -> str:
            return assets.format(units, wallet.asset)

        return cls(
            wallet_id=wallet.id, asset=wallet.asset, from_=span[0], to=span[1],
            opening_balance=text(opening),
            closing_balance=text(lines[-1].balance_after if lines else opening),
            lines=[StatementLineData.of(line, text) for line in lines],
        )
