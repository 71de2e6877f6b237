"""Custody use cases: keychains, address pools, operators, payouts, signing, audit."""

from __future__ import annotations

from dataclasses import dataclass

from dpgnode.domain.custody.networks import Network
from dpgnode.ports.custody import CustodyStore, PayoutFunding
from dpgnode.services.custody.addresses import AddressService
from dpgnode.services.custody.audit import AuditService
from dpgnode.services.custody.payouts import PayoutService
from dpgnode.services.custody.policy import OperatorService
from dpgnode.services.custody.wallets import KeychainService


@dataclass
class CustodyServices:
    """The custody use cases of one node, wired by ``dpgnode.node``.

    ``funding`` is the chain data payouts are built from; it stays ``None`` until a chain
    connection provides it (payouts then fail at signing, releasing their holds).
    """

    store: CustodyStore
    network: Network
    keychains: KeychainService
    addresses: AddressService
    operators: OperatorService
    payouts: PayoutService
    audit: AuditService
    funding: PayoutFunding | None = None
