"""``dpg chain sweep`` end to end: the CLI plans, the SoftHSM2 signer signs, anvil judges.

A token deposit without gas is swept to the treasury: the HSM hot key named by
``gas_source`` tops it up first, the deposit's HD key (its seed sealed in the HSM) signs the
token transfer; the dry run signs nothing, and the audit log names the operator.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from coincurve import PublicKey
from web3 import Web3
from web3.types import Wei

from dpgnode.domain.custody.evm import checksum_encode, evm_address_from_public_key
from tests.contracts.compile import load_artifact
from tests.integration.chains.test_payout_end_to_end import as_json, audit_of, make_dpg, set_up
from tests.support.anvil import CHAIN_ID, AnvilNode
from tests.support.anvil_driver import deploy_token

pytestmark = pytest.mark.integration

ETHER = 10**18
GAS_KEY = "hot:gas:anvil"


def test_token_sweep_is_planned_then_signed_by_the_hsm_with_a_gas_top_up(
    tmp_path: Path, anvil: AnvilNode
) -> None:
    w3 = anvil.w3
    token = w3.eth.contract(address=Web3.to_checksum_address(deploy_token(anvil)),
                            abi=load_artifact()["abi"])
    treasury = checksum_encode(secrets.token_bytes(20))
    data_dir = tmp_path / "data"
    dpg = make_dpg(data_dir, {"DPG_CHAINS__EVM__ETHEREUM__RPC_URL": anvil.url})
    ops = set_up(dpg, data_dir, f"""
[custody]
network = "regtest"

[chains.evm.ethereum]
chain_id = {CHAIN_ID}
tokens = {{ "USDT-ETH" = "{token.address}" }}
treasury_address = "{treasury}"
gas_source = "{GAS_KEY}"
""")
    key = as_json(dpg("hsm", "keygen", GAS_KEY, "--json"))
    gas = Web3.to_checksum_address(evm_address_from_public_key(
        PublicKey(bytes.fromhex(key["publicKey"])).format(compressed=True)))
    w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(
        {"from": w3.eth.accounts[0], "to": gas, "value": Wei(ETHER)}))
    wallet = as_json(dpg("wallet", "create", "--words", "12", "--network", "regtest",
                         "--scheme", "evm", "--json"))
    (account,) = wallet["accounts"]
    deposit = as_json(dpg("wallet", "new-address", account["id"], "--json"))["address"]
    dpg("wallet", "mark-used", deposit)  # what the watcher does when it sees a payment
    w3.eth.wait_for_transaction_receipt(
        token.functions.transfer(deposit, 12_345_678).transact({"from": w3.eth.accounts[0]}))

    dry = as_json(dpg("chain", "sweep", "USDT-ETH", "--dry-run", "--json"))
    [plan] = dry["plans"]
    [planned] = plan["sweeps"]
    assert (plan["treasury"], planned["from"], planned["amount"]) == (
        treasury, [deposit], "12.345678")
    assert planned["topUp"] != "0"
    assert token.functions.balanceOf(treasury).call() == 0  # the dry run signed nothing

    refused = dpg("chain", "sweep", "USDT-ETH", "--yes", code=1)
    assert "operator token" in refused.output  # nothing is signed without one
    done = as_json(dpg("chain", "sweep", "USDT-ETH", "--yes", "--json", token=ops["alice"]))
    assert done["problems"] == []
    assert [(s["kind"], s["status"]) for s in done["sweeps"]] == [
        ("top_up", "broadcast"), ("sweep", "broadcast")]
    assert token.functions.balanceOf(treasury).call() == 12_345_678
    assert token.functions.balanceOf(deposit).call() == 0
    sweep_id = done["sweeps"][1]["id"]
    records = [r for r in audit_of(dpg) if r["subject"] == sweep_id]
    assert [(r["action"], r["result"]) for r in records] == [
        ("sweep.signed", "ok"), ("sweep.broadcast", "ok")]
    alice = next(o for o in as_json(dpg("operator", "list", "--json")) if o["name"] == "alice")
    assert {r["actor"] for r in records} == {alice["id"]}
