"""A node following a real Bitcoin Knots regtest chain, and what the outside world does there.

:func:`regtest_rig` builds a node exactly as production does (``build_node`` from
``[chains.bitcoin]`` settings: the real ``BitcoinChainClient`` over JSON-RPC, the watcher,
the ledger, SQLite or the given database) on the node of a :class:`BitcoindDriver`
(``tests/support/bitcoind_driver``), with a watch-only regtest account of its own
(``regtest_keys``). The other helpers build the transactions the driver has no verb for:
a double spend to mine in a new branch, a child of an unconfirmed payment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.domain.chains.payments import Payment
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.events import OutboxEvent
from dpgnode.domain.ledger import AccountRef
from dpgnode.node import Node, build_node
from dpgnode.services.chains.monitor import ChainHealth
from dpgnode.settings import Settings, load_settings
from tests.support.bitcoind import btc_to_sats
from tests.support.bitcoind_driver import FUNDER, BitcoindDriver, sats_to_btc
from tests.support.regtest_keys import regtest_vpub

CHAIN = "bitcoin"
OWNER = "store:st_1"
STORE = AccountRef.parse("store:st_1:BTC:available")
FEE = 2_000
"""Fee of the transactions built here, in sats (far above regtest's minimum relay fee)."""


@dataclass
class Rig:
    """A node following the regtest chain, and what the tests ask of it."""

    driver: BitcoindDriver
    settings: Settings
    node: Node
    account_id: str

    def poll(self) -> ChainHealth:
        """One watcher poll through the monitor, as the node's worker runs it."""
        health = self.node.chains.monitor.poll(CHAIN, force=True)
        assert not health.error, health.error
        return health

    def address(self, owner: str = OWNER) -> str:
        return self.node.custody.addresses.issue(self.account_id, owner=owner).address.address

    def restart(self) -> None:
        """Close the node and open a new one on the same database (a new watcher)."""
        self.node.close()
        self.node = build_node(self.settings, clock=FixedClock())

    def balance(self, ref: AccountRef = STORE) -> int:
        account = self.node.queries.account(ref)
        return 0 if account is None else account.balance

    def payment(self, key: str) -> Payment:
        found = self.node.chains.store.payment(CHAIN, key)
        assert found is not None, key
        return found

    def events(self, kind: str = "chain.") -> list[OutboxEvent]:
        return list(self.node.outbox.events(type_prefix=kind, limit=10_000))

    def kinds(self, key: str) -> list[str]:
        """Types of the events about the payment ``key``, in commit order."""
        return [e.type for e in self.events("chain.payment_") if e.payload["paymentKey"] == key]


def regtest_rig(
    driver: BitcoindDriver, data_dir: Path, account: int, *, confirmations: int = 1,
    reorg_limit: int = 6, database_url: str | None = None, custody: dict[str, Any] | None = None,
) -> Rig:
    """A migrated node following ``driver``'s chain from its tip; the caller closes ``.node``.

    ``account`` picks the watch-only key account (distinct per test on a shared node).
    """
    rpc = driver.node
    overrides: dict[str, Any] = {
        "custody": {"network": "regtest", **(custody or {})},
        "chains": {"bitcoin": {
            "rpc_url": f"http://127.0.0.1:{rpc.port}", "rpc_user": rpc.user,
            "rpc_password": rpc.password, "confirmations": confirmations,
            "reorg_limit": reorg_limit,
        }},
    }
    if database_url is not None:
        overrides["database"] = {"url": database_url}
    settings = load_settings(data_dir, overrides=overrides)
    node = build_node(settings, clock=FixedClock(), upgrade=True)
    view = node.custody.keychains.add_watch_only(regtest_vpub(account), network=Network.REGTEST)
    rig = Rig(driver, settings, node, view.accounts[0].id)
    rig.poll()  # the watcher starts at the tip: earlier blocks are not its concern
    return rig


def key_of(driver: BitcoindDriver, txid: str, address: str) -> str:
    """The payment key (``txid:vout``) of ``txid``'s output to ``address``."""
    tx = driver.node.rpc("getrawtransaction", txid, True)
    [vout] = [o["n"] for o in tx["vout"] if o["scriptPubKey"].get("address") == address]
    return f"{txid}:{vout}"


def double_spend(driver: BitcoindDriver, txid: str, address: str, units: int) -> str:
    """Raw hex of a transaction spending ``txid``'s inputs, paying ``units`` to ``address``
    and the rest back to the funder, with a fee above the original's; signed, not sent."""
    node = driver.node
    tx = node.rpc("getrawtransaction", txid, True)
    inputs = [{"txid": i["txid"], "vout": i["vout"]} for i in tx["vin"]]
    value = sum(btc_to_sats(node.rpc("getrawtransaction", i["txid"], True)["vout"][i["vout"]]
                            ["value"]) for i in tx["vin"])
    fee = value - sum(btc_to_sats(o["value"]) for o in tx["vout"]) + FEE
    change = node.rpc("getrawchangeaddress", wallet=FUNDER)
    outputs = [{address: sats_to_btc(units)}, {change: sats_to_btc(value - fee - units)}]
    return _signed(driver, node.rpc("createrawtransaction", inputs, outputs, 0, True))


def spend_output(driver: BitcoindDriver, txid: str, vout: int, address: str, units: int) -> str:
    """Send a child of unconfirmed ``txid`` spending its (funder's) output ``vout``; its txid."""
    node = driver.node
    value = btc_to_sats(node.rpc("getrawtransaction", txid, True)["vout"][vout]["value"])
    change = node.rpc("getrawchangeaddress", wallet=FUNDER)
    outputs = [{address: sats_to_btc(units)}, {change: sats_to_btc(value - units - FEE)}]
    raw = node.rpc("createrawtransaction", [{"txid": txid, "vout": vout}], outputs, 0, True)
    child: str = node.rpc("sendrawtransaction", _signed(driver, raw))
    return child


def txid_of(driver: BitcoindDriver, raw: str) -> str:
    txid: str = driver.node.rpc("decoderawtransaction", raw)["txid"]
    return txid


def _signed(driver: BitcoindDriver, raw: str) -> str:
    signed = driver.node.rpc("signrawtransactionwithwallet", raw, wallet=FUNDER)
    assert signed["complete"], signed.get("errors")
    hex_tx: str = signed["hex"]
    return hex_tx
