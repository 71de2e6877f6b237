"""Helpers for custody tests: nodes with payout policies, chain funding without a chain.

``StaticFunding`` is a :class:`~dpgnode.ports.custody.PayoutFunding` over outputs and EVM
parameters a test sets up by hand (the real one comes with the chain watchers); it spends
outputs paying to addresses the node issued, so the keys the signer derives must really
control them for ``tx_signing`` to accept the spend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.domain.custody.addresses import parse_address
from dpgnode.domain.custody.btc_spend import FeeRate, Utxo
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.wallet import IssuedAddress
from dpgnode.domain.ledger import AccountRef, EntryDraft, Posting
from dpgnode.errors import NotFoundError
from dpgnode.node import Node, build_node
from dpgnode.ports.custody import BitcoinFunding, EvmFunding
from dpgnode.settings import load_settings

# Destinations on regtest / EVM used by the tests (any valid addresses would do).
BTC_DEST = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
BTC_OTHER = "bcrt1qqqqsyqcyq5rqwzqfpg9scrgwpugpzysnard0ew"
EVM_DEST = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
# The mnemonic of the standard BIP84 test vectors (not a secret: published in BIP84).
VECTOR_MNEMONIC = (
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon "
    "abandon about"
)
WORLD = AccountRef.parse("operator:op:BTC:world")


def policies(**per_asset: Mapping[str, Any]) -> dict[str, Any]:
    return {"custody": {"network": "regtest", "payout_policies": dict(per_asset)}}


def custody_node(
    data_dir: Path, clock: FixedClock, *, url: str | None = None, **settings: Any
) -> Node:
    """A migrated node on regtest with the given ``custody`` (and other) settings."""
    overrides: dict[str, Any] = {"custody": {"network": "regtest"}, **settings}
    if url is not None:
        overrides["database"] = {"url": url}
    return build_node(load_settings(data_dir, overrides=overrides), clock=clock, upgrade=True)


def fund(node: Node, account: AccountRef, units: int, key: str) -> None:
    """Credit ``account`` from the outside world."""
    world = AccountRef.parse(f"operator:op:{account.asset}:world")
    node.ledger.post(EntryDraft(key, (Posting(world, -units), Posting(account, units))))


@dataclass
class StaticFunding:
    """Chain data set by hand: outputs per source, one fee rate, EVM parameters."""

    network: Network = Network.REGTEST
    utxos: dict[str, list[Utxo]] = field(default_factory=dict)
    fee_rate: FeeRate = field(default_factory=lambda: FeeRate(2000))
    chain_id: int = 31337
    nonces: dict[str, int] = field(default_factory=dict)
    token_contracts: dict[str, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def pay_to(self, source: str, address: IssuedAddress, sats: int, *, txid_byte: int = 1,
               vout: int = 0) -> Utxo:
        """An output of ``sats`` to an address the node issued, spendable by ``source``."""
        script = parse_address(address.address, self.network).script_pubkey
        key_id = f"{address.account_id}/{address.branch}/{address.index}"
        utxo = Utxo(bytes([txid_byte]).hex() * 32, vout, sats, script, key_id)
        self.utxos.setdefault(source, []).append(utxo)
        return utxo

    def bitcoin(self, source: str, network: Network) -> BitcoinFunding:
        self.calls.append(f"bitcoin:{source}")
        if source not in self.utxos:
            raise NotFoundError(f"no outputs for {source}")
        return BitcoinFunding(tuple(self.utxos[source]), self.fee_rate)

    def evm(self, asset: str, sender: str) -> EvmFunding:
        self.calls.append(f"evm:{asset}:{sender}")
        return EvmFunding(
            chain_id=self.chain_id, nonce=self.nonces.get(sender, 0),
            max_fee_per_gas=30 * 10**9, max_priority_fee_per_gas=10**9,
            gas=21_000 if asset not in self.token_contracts else 65_000,
            token_contract=self.token_contracts.get(asset),
        )
