"""``dpg chain``: status, payments, incidents, reconcile, rescan and resume over the simulator.

The commands run in-process (Typer's CliRunner) against an initialised data directory; the
node they open follows a :class:`SimulatedChain` through ``CliState.node_factory`` (the same
``build_node`` with the chain injected), and the test acts on the chain between commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dpgnode.adapters.chains.simulated import Output, SimulatedChain
from dpgnode.cli.state import CliState
from dpgnode.domain.ledger import AccountRef
from dpgnode.node import Node, build_node
from dpgnode.settings import Settings, load_settings
from tests.support.sim_node import CHAIN, sim_chains, watch_only_account
from tests.unit.cli.conftest import Invoke

STORE = AccountRef.parse("store:st_1:BTC:available")


class Rig:
    """An initialised data directory, a simulated chain, and ``dpg`` following it."""

    def __init__(self, dpg: Invoke, data_dir: Path) -> None:
        self.chain = SimulatedChain(seed=31)
        self.chain.mine(3)
        self._dpg = dpg
        self._data_dir = data_dir
        with self.node() as node:
            self.account_id = watch_only_account(node)

    def factory(self, settings: Settings) -> Node:
        return build_node(settings, chains=sim_chains(self.chain))

    def node(self) -> _Opened:
        return _Opened(self.factory(load_settings(self._data_dir)))

    def __call__(self, *args: str, input: str | None = None) -> Any:
        return self._dpg(*args, input=input, obj=CliState(node_factory=self.factory))

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.exit_code in (0, 1), result.output
        return json.loads(result.stdout)

    def address(self) -> str:
        with self.node() as node:
            issued = node.custody.addresses.issue(self.account_id, owner="store:st_1")
            return issued.address.address

    def poll(self) -> None:
        with self.node() as node:
            health = node.chains.monitor.poll(CHAIN, force=True)
            assert not health.error, health.error

    def balance(self) -> int:
        with self.node() as node:
            account = node.queries.account(STORE)
            return 0 if account is None else account.balance


class _Opened:
    def __init__(self, node: Node) -> None:
        self.node = node

    def __enter__(self) -> Node:
        return self.node

    def __exit__(self, *exc: object) -> None:
        self.node.close()


@pytest.fixture
def rig(initialised: Invoke, data_dir: Path) -> Rig:
    built = Rig(initialised, data_dir)
    built.poll()
    return built


def _paid(rig: Rig, units: int = 50_000) -> tuple[str, Any]:
    address = rig.address()
    tx = rig.chain.pay(address, units)
    rig.chain.mine(1)
    rig.poll()
    return address, tx


def test_status_shows_heights_and_lag_when_a_chain_is_followed(rig: Rig) -> None:
    rig.chain.mine(2)  # the node is 2 blocks ahead of the watcher
    [status] = rig.json("chain", "status")
    tip = rig.chain.tip.height
    assert (status["chain"], status["nodeHeight"], status["ourHeight"], status["lag"],
            status["state"]) == (CHAIN, tip, tip - 2, 2, "syncing")
    assert status["incidents"] == []
    table = rig("chain", "status")
    assert table.exit_code == 0
    assert "bitcoin" in table.stdout
    assert "syncing" in table.stdout


def test_status_says_so_when_no_chain_is_followed(initialised: Invoke) -> None:
    result = initialised("chain", "status")
    assert result.exit_code == 0
    assert "no chain is followed" in result.stderr
    assert json.loads(initialised("chain", "status", "--json").stdout) == []


def test_payments_lists_and_filters_when_payments_were_seen(rig: Rig) -> None:
    address, tx = _paid(rig, 12_345)
    rig.chain.pay(rig.address(), 1_000)  # unconfirmed
    rig.poll()
    everything = rig.json("chain", "payments")
    assert [p["status"] for p in everything] == ["pending", "credited"]
    [credited] = rig.json("chain", "payments", CHAIN, "--status", "credited")
    assert (credited["address"], credited["amount"], credited["txid"]) == (
        address, "0.00012345", tx.txid)
    assert rig.json("chain", "payments", "--address", address) == [credited]
    listed = rig("chain", "payments")
    assert listed.exit_code == 0
    assert address in listed.stdout


def test_unknown_chain_is_a_usage_error_naming_the_followed_ones(rig: Rig) -> None:
    result = rig("chain", "payments", "dogecoin")
    assert result.exit_code == 2
    assert "dogecoin" in result.output
    assert "bitcoin" in result.output


def test_reconcile_exits_0_when_matched_and_1_with_the_address_when_not(rig: Rig) -> None:
    address, tx = _paid(rig)
    [matched] = rig.json("chain", "reconcile")
    assert matched["state"] == "matched"
    assert matched["totals"][0]["ledger"] == matched["totals"][0]["chain"] == "0.00050000"

    theft = rig.chain.make_tx([tx.outpoint(0)], [Output(rig.chain.new_address(), 49_000)])
    rig.chain.broadcast(theft)
    rig.chain.mine(1)
    rig.poll()
    before = rig.balance()
    result = rig("chain", "reconcile", CHAIN, "--json")
    assert result.exit_code == 1
    [run] = json.loads(result.stdout)
    assert run["state"] == "mismatch"
    [difference] = run["differences"]
    assert (difference["address"], difference["ledger"], difference["chain"],
            difference["difference"]) == (address, "0.00050000", "0.00000000", "-0.00050000")
    assert rig.balance() == before  # never adjusted
    [incident] = rig.json("chain", "incidents")
    assert incident["kind"] == "reconciliation_mismatch"
    assert incident["id"] == run["incidentId"]
    printed = rig("chain", "reconcile")
    assert printed.exit_code == 1
    assert address in printed.stdout


def test_rescan_finds_a_payment_made_before_the_watcher_started(
    initialised: Invoke, data_dir: Path
) -> None:
    rig = Rig(initialised, data_dir)
    address = rig.address()
    rig.chain.pay(address, 2_500)
    rig.chain.mine(1)
    missed_at = rig.chain.tip.height
    rig.poll()  # starts at the tip: the payment's block is not read
    assert rig.balance() == 0

    declined = rig("chain", "rescan", CHAIN, "--from", str(missed_at), input="n\n")
    assert declined.exit_code == 1
    assert rig.balance() == 0

    done = rig.json("chain", "rescan", CHAIN, "--from", str(missed_at), "--yes")
    assert (done["ourHeight"], done["lag"], done["state"]) == (rig.chain.tip.height, 0, "synced")
    assert rig.balance() == 2_500
    assert rig.json("chain", "reconcile")[0]["state"] == "matched"


def test_rescan_refuses_a_height_past_the_watcher(rig: Rig) -> None:
    result = rig("chain", "rescan", CHAIN, "--from", str(rig.chain.tip.height + 5), "--yes")
    assert result.exit_code == 1
    assert "cannot rescan" in result.stderr


def test_resume_with_accept_reorg_follows_the_new_chain_and_reverses_credits(rig: Rig) -> None:
    _address, tx = _paid(rig, 40_000)
    rig.chain.mine(6)
    rig.poll()
    assert rig.balance() == 40_000
    rig.chain.reorg(7, drop=[tx.txid])  # deeper than the limit of 6: the chain pauses
    rig.poll()
    [status] = rig.json("chain", "status")
    assert status["state"] == "paused"
    assert [i["kind"] for i in status["incidents"]] == ["deep_reorg"]

    again = rig("chain", "resume", CHAIN, "--yes", "--json")
    assert again.exit_code == 1  # without --accept-reorg it stops at the same fork
    assert json.loads(again.stdout)["paused"]

    done = rig.json("chain", "resume", CHAIN, "--accept-reorg", "--yes")
    assert (done["paused"], done["ourHeight"], done["lag"]) == ("", rig.chain.tip.height, 0)
    assert rig.balance() == 0  # the dropped payment's credit was reversed
    assert rig.json("chain", "incidents") == []
    assert [i["kind"] for i in rig.json("chain", "incidents", "--all")] == [
        "deep_reorg", "deep_reorg"]
    with rig.node() as node:
        assert node.verify_ledger().ok


def test_resume_leaves_a_chain_alone_when_it_is_not_paused(rig: Rig) -> None:
    result = rig("chain", "resume", CHAIN, "--yes")
    assert result.exit_code == 0
    assert "not paused" in result.stderr


def test_chain_commands_have_help_with_examples(rig: Rig) -> None:
    for command in ("status", "rescan", "resume", "payments", "incidents", "reconcile"):
        result = rig("chain", command, "--help")
        assert result.exit_code == 0
        assert f"dpg chain {command}" in result.stdout

