"""Issue 3 "Done when": an operator creates a wallet, sees its xpubs, derives addresses, and
signs a payout that a real Bitcoin regtest node and a real EVM node accept, only after the
policy allows it, with every step in the audit log.

Everything an operator does goes through the ``dpg`` CLI (Typer's CliRunner, in-process)
against a real data directory: the signer is a real SoftHSM2 token made by ``dpg hsm init``,
funding and broadcasting go to the session's real Bitcoin Knots regtest node and anvil
(``[chains]`` in ``dpg.toml``). The chain nodes' own wallets/dev accounts only fund our
addresses and deploy the test ERC-20; every payout transaction is built and signed by the
node, judged by the real chain node, and its effect is read back from the chain.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from coincurve import PublicKey
from eth_account import Account
from typer.testing import CliRunner, Result
from web3 import Web3
from web3.contract import Contract
from web3.types import Wei

from dpgnode.cli.errors import EXIT_FAILED
from dpgnode.cli.main import app
from dpgnode.domain.custody.evm import evm_address_from_public_key
from tests.contracts.compile import load_artifact
from tests.integration.chains.signing import BURN
from tests.support.anvil import CHAIN_ID, DEV_KEYS, AnvilNode
from tests.support.bitcoind import BitcoindNode, btc_to_sats
from tests.support.softhsm import require_softhsm

pytestmark = pytest.mark.integration

Invoke = Callable[..., Result]
RECIPIENT = Account.from_key(DEV_KEYS[1]).address
STRANGER = "0x" + "5a" * 20
ETHER = 10**18


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    require_softhsm()
    for name in list(os.environ):
        if name.startswith("DPG_") or name == "SOFTHSM2_CONF":
            monkeypatch.delenv(name)


def make_dpg(data_dir: Path, secrets: Mapping[str, str]) -> Invoke:
    """``dpg ARGS`` in-process as an operator runs it; ``token`` is DPG_OPERATOR_TOKEN."""
    runner = CliRunner()

    def invoke(*args: str, token: str | None = None, code: int = 0, bare: bool = False) -> Result:
        env = {"DPG_DATA_DIR": str(data_dir), **({} if bare else secrets)}
        if token is not None:
            env["DPG_OPERATOR_TOKEN"] = token
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == code, result.output
        return result

    return invoke


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def set_up(dpg: Invoke, data_dir: Path, config: str) -> dict[str, str]:
    """``dpg init``, the configuration, ``dpg hsm init`` and operators alice, bob, carol."""
    dpg("init", bare=True)  # the secrets complete the configuration written next
    (data_dir / "dpg.toml").write_text(config)
    dpg("hsm", "init")
    return {name: as_json(dpg("operator", "add", name, "--json"))["token"]
            for name in ("alice", "bob", "carol")}


def audit_of(dpg: Invoke) -> list[dict[str, Any]]:
    verified = as_json(dpg("audit", "verify", "--json"))
    assert verified["ok"], verified
    records: list[dict[str, Any]] = as_json(dpg("audit", "list", "--limit", "1000", "--json"))
    assert verified["checked"] == len(records)
    return records


def steps(records: list[dict[str, Any]], subject: str) -> list[tuple[str, str]]:
    return [(r["action"], r["result"]) for r in records if r["subject"] == subject]


def denied_rules(records: list[dict[str, Any]]) -> list[str]:
    return [r["rule"] for r in records
            if r["action"] == "payout.requested" and r["result"] == "denied"]


class TestBitcoinRegtest:
    def test_payout_is_signed_by_the_hsm_and_mined_only_after_policy_and_two_approvals(
        self, tmp_path: Path, bitcoind: BitcoindNode
    ) -> None:
        destination = bitcoind.rpc("getnewaddress", "", "bech32", wallet="funder")
        stranger = bitcoind.rpc("getnewaddress", "", "bech32", wallet="funder")
        data_dir = tmp_path / "data"
        dpg = make_dpg(data_dir, {"DPG_CHAINS__BITCOIN__RPC_PASSWORD": bitcoind.password})
        ops = set_up(dpg, data_dir, f"""
[custody]
network = "regtest"

[custody.payout_policies.BTC]
max_per_transaction = "0.5"
max_per_day = "2"
approval_threshold = "0.1"
approvals_required = 2
allowed_destinations = ["{destination}"]

[chains.bitcoin]
rpc_url = "http://127.0.0.1:{bitcoind.port}"
rpc_user = "{bitcoind.user}"
""")
        # An HD wallet whose seed is sealed in the HSM; the node shows only its xpub.
        wallet = as_json(dpg("wallet", "create", "--words", "12", "--network", "regtest",
                             "--scheme", "bip84", "--label", "treasury", "--json"))
        (account,) = wallet["accounts"]
        shown = as_json(dpg("wallet", "show", wallet["id"], "--json"))
        assert shown["accounts"][0]["xpub"] == account["xpub"]
        assert account["xpub"].startswith(("vpub", "tpub"))
        assert wallet["mnemonic"] not in json.dumps(shown)

        # A fresh receive address, funded from the node's wallet and mined.
        issued = as_json(dpg("wallet", "new-address", account["id"], "--reference", "float",
                             "--json"))
        assert issued["address"].startswith("bcrt1q")
        bitcoind.rpc("sendtoaddress", issued["address"], Decimal("1.0"), wallet="funder")
        bitcoind.mine(1, BURN)
        dpg("ledger", "post", "--key", "float-btc", "--memo", "opening float",
            "--posting", "operator:op:BTC:world=-1", "--posting", "store:st_1:BTC:available=1")

        def request(amount: str, to: str, key: str, code: int = 0) -> Result:
            return dpg("payout", "request", "--asset", "BTC", "--to", to, "--amount", amount,
                       "--source", account["id"], "--debit", "st_1", "--key", key, "--json",
                       token=ops["alice"], code=code)

        over_limit = request("0.6", destination, "too-much", code=EXIT_FAILED)
        assert "per-transaction limit" in over_limit.output
        not_listed = request("0.2", stranger, "stranger", code=EXIT_FAILED)
        assert "allow-list" in not_listed.output
        assert as_json(dpg("payout", "list", "--json")) == []  # nothing held, nothing made

        requested = as_json(request("0.2", destination, "rent-2025-01"))
        assert (requested["status"], requested["approvalsRequired"]) == ("pending_approval", 2)
        payout_id = requested["id"]
        once = as_json(dpg("payout", "approve", payout_id, "--json", token=ops["bob"]))
        assert (once["status"], once["txid"], once["rawTx"]) == ("pending_approval", None, None)
        signed = as_json(dpg("payout", "approve", payout_id, "--json", token=ops["carol"]))
        assert signed["status"] == "signed"
        txid = signed["txid"]
        assert txid not in bitcoind.rpc("getrawmempool")  # signing broadcasts nothing

        sent = as_json(dpg("payout", "broadcast", payout_id, "--json", token=ops["alice"]))
        assert (sent["status"], sent["accepted"], sent["txid"]) == ("broadcast", True, txid)
        assert txid in bitcoind.rpc("getrawmempool")
        again = as_json(dpg("payout", "broadcast", payout_id, "--json", token=ops["bob"]))
        assert (again["status"], again["accepted"], again["known"]) == ("broadcast", True, True)
        bitcoind.mine(1, BURN)
        assert bitcoind.rpc("getrawtransaction", txid, True)["confirmations"] == 1
        received = bitcoind.rpc("getreceivedbyaddress", destination, 1, wallet="funder")
        assert btc_to_sats(received) == 20_000_000  # exactly the amount, fee paid by us

        records = audit_of(dpg)
        assert denied_rules(records) == ["per_transaction_limit", "destination_not_allowed"]
        assert steps(records, payout_id) == [
            ("payout.requested", "ok"), ("payout.approved", "ok"), ("payout.approved", "ok"),
            ("signing.requested", "pending"), ("signing.succeeded", "ok"),
            ("payout.broadcast", "ok"), ("payout.broadcast", "ok"),
        ]
        signed_record = next(r for r in records if r["action"] == "signing.succeeded")
        assert signed_record["details"]["txid"] == txid


@pytest.fixture(scope="module")
def token(anvil: AnvilNode) -> Contract:
    """The test ERC-20 (6 decimals, like USDT-ETH), deployed by anvil's first dev account."""
    artifact = load_artifact()
    w3 = anvil.w3
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor("Test Tether", "TUSDT", 6).transact({"from": w3.eth.accounts[0]}))
    deployed = w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
    assert isinstance(deployed, Contract)
    return deployed


def give_eth(anvil: AnvilNode, address: str, wei: int) -> None:
    w3 = anvil.w3
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction({
        "from": w3.eth.accounts[0], "to": Web3.to_checksum_address(address), "value": Wei(wei),
    }))
    assert receipt["status"] == 1


class TestEvmAnvil:
    def test_ether_and_token_payouts_are_mined_only_after_policy_and_approvals(
        self, tmp_path: Path, anvil: AnvilNode, token: Contract
    ) -> None:
        w3 = anvil.w3
        data_dir = tmp_path / "data"
        dpg = make_dpg(data_dir, {"DPG_CHAINS__EVM__ETHEREUM__RPC_URL": anvil.url})
        ops = set_up(dpg, data_dir, f"""
[custody]
network = "regtest"

[custody.payout_policies.ETH]
max_per_transaction = "2"
approval_threshold = "1"
approvals_required = 2
allowed_destinations = ["{RECIPIENT}"]

[custody.payout_policies."USDT-ETH"]
max_per_transaction = "100"
allowed_destinations = ["{RECIPIENT}"]

[chains.evm.ethereum]
chain_id = {CHAIN_ID}
tokens = {{ "USDT-ETH" = "{token.address}" }}
""")
        # Native ETH from the HD wallet's EVM account (address 0), funded by a dev account.
        wallet = as_json(dpg("wallet", "create", "--words", "12", "--network", "regtest",
                             "--scheme", "evm", "--json"))
        (account,) = wallet["accounts"]
        sender = as_json(dpg("wallet", "new-address", account["id"], "--json"))["address"]
        give_eth(anvil, sender, 5 * ETHER)
        dpg("ledger", "post", "--key", "float-eth", "--memo", "float",
            "--posting", "operator:op:ETH:world=-10", "--posting", "store:st_1:ETH:available=10")

        def request(asset: str, amount: str, to: str, source: str, key: str,
                    code: int = 0) -> Result:
            return dpg("payout", "request", "--asset", asset, "--to", to, "--amount", amount,
                       "--source", source, "--debit", "st_1", "--key", key, "--json",
                       token=ops["alice"], code=code)

        request("ETH", "3", RECIPIENT, account["id"], "big", code=EXIT_FAILED)
        request("ETH", "1.5", STRANGER, account["id"], "elsewhere", code=EXIT_FAILED)
        pending = as_json(request("ETH", "1.5", RECIPIENT, account["id"], "eth-1"))
        payout_id = pending["id"]
        assert pending["status"] == "pending_approval"
        once = as_json(dpg("payout", "approve", payout_id, "--json", token=ops["bob"]))
        assert (once["status"], once["txid"]) == ("pending_approval", None)
        signed = as_json(dpg("payout", "approve", payout_id, "--json", token=ops["carol"]))
        assert signed["status"] == "signed"
        txid = signed["txid"]

        # The node refuses while the sender cannot pay: the payout stays signed, audited.
        w3.provider.make_request("anvil_setBalance", [sender, "0x0"])  # type: ignore[arg-type]
        refused = dpg("payout", "broadcast", payout_id, "--json", token=ops["alice"],
                      code=EXIT_FAILED)
        assert "insufficient funds" in refused.output.lower()
        assert as_json(refused)["status"] == "signed"
        assert as_json(dpg("payout", "show", payout_id, "--json"))["status"] == "signed"

        # Funded again: accepted into the mempool, then mined; amounts move exactly.
        w3.provider.make_request("anvil_setBalance",  # type: ignore[arg-type]
                                 [sender, hex(5 * ETHER)])
        before_sender, before_recipient = w3.eth.get_balance(sender), w3.eth.get_balance(
            RECIPIENT)
        w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        try:
            sent = as_json(dpg("payout", "broadcast", payout_id, "--json", token=ops["alice"]))
            assert (sent["status"], sent["accepted"], sent["txid"]) == ("broadcast", True, txid)
            assert w3.eth.get_transaction(txid)["blockNumber"] is None  # in the mempool
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        finally:
            w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        receipt = w3.eth.get_transaction_receipt(txid)
        assert receipt["status"] == 1
        gas_cost = receipt["gasUsed"] * receipt["effectiveGasPrice"]
        assert w3.eth.get_balance(RECIPIENT) == before_recipient + 15 * ETHER // 10
        assert w3.eth.get_balance(sender) == before_sender - 15 * ETHER // 10 - gas_cost

        # ERC-20 from an HSM hot key: below any approval threshold, signed at request.
        key = as_json(dpg("hsm", "keygen", "hot:USDT-ETH:anvil", "--json"))
        hot = Web3.to_checksum_address(evm_address_from_public_key(
            PublicKey(bytes.fromhex(key["publicKey"])).format(compressed=True)))
        give_eth(anvil, hot, ETHER)
        owner = w3.eth.accounts[0]
        w3.eth.wait_for_transaction_receipt(
            token.functions.mint(hot, 1_000_000_000).transact({"from": owner}))
        dpg("ledger", "post", "--key", "float-usdt", "--memo", "float",
            "--posting", "operator:op:USDT-ETH:world=-100",
            "--posting", "store:st_1:USDT-ETH:available=100")
        token_payout = as_json(request("USDT-ETH", "25.5", RECIPIENT, "hot:USDT-ETH:anvil",
                                       "usdt-1"))
        assert token_payout["status"] == "signed"
        before = token.functions.balanceOf(RECIPIENT).call()
        sent = as_json(dpg("payout", "broadcast", token_payout["id"], "--json",
                           token=ops["bob"]))
        assert sent["status"] == "broadcast"
        assert w3.eth.get_transaction_receipt(sent["txid"])["status"] == 1
        assert token.functions.balanceOf(RECIPIENT).call() == before + 25_500_000
        assert token.functions.balanceOf(hot).call() == 1_000_000_000 - 25_500_000

        records = audit_of(dpg)
        assert denied_rules(records) == ["per_transaction_limit", "destination_not_allowed"]
        assert steps(records, payout_id) == [
            ("payout.requested", "ok"), ("payout.approved", "ok"), ("payout.approved", "ok"),
            ("signing.requested", "pending"), ("signing.succeeded", "ok"),
            ("payout.broadcast", "failed"), ("payout.broadcast", "ok"),
        ]
        failed = next(r for r in records if r["action"] == "payout.broadcast"
                      and r["result"] == "failed")
        assert "insufficient funds" in failed["details"]["reason"].lower()
        assert steps(records, token_payout["id"]) == [
            ("payout.requested", "ok"), ("signing.requested", "pending"),
            ("signing.succeeded", "ok"), ("payout.broadcast", "ok"),
        ]
