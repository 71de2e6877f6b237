"""``/api/v1/blockchain`` and ``server/info``'s sync status, against a node over the simulator.

The node is the API tests' seed (callers and their keys) plus the simulated Bitcoin chain of
``tests.support.sim_node`` and a BTC payout policy. ``BLOCKCHAIN_MATRIX`` is R18's row per
route (merged into ``test_api_policies``' coverage check); the narrow scopes
(``dpg.blockchain.view`` / ``.addresses`` / ``.send``) each get what they name and no more.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from coincurve import PrivateKey
from litestar.testing import TestClient

from dpgnode.adapters.chains.simulated import Output, SimulatedChain
from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.api.app import create_app
from dpgnode.domain.access import (
    BLOCKCHAIN_ADDRESSES,
    BLOCKCHAIN_SEND,
    BLOCKCHAIN_VIEW,
    UNRESTRICTED,
)
from dpgnode.domain.custody.addresses import address_from_public_key
from dpgnode.domain.custody.networks import AddressType, Network
from dpgnode.domain.ledger import AccountRef, EntryDraft, Posting
from dpgnode.node import Node, build_node
from dpgnode.settings import load_settings
from tests.support.sim_node import CHAIN, sim_chains, watch_only_account
from tests.unit.api.conftest import HIGH_LIMITS, Api, Seed

CALLERS = ("anonymous", "store_a", "store_b", "readonly", "admin", "revoked")
BASE = "/api/v1/blockchain"
STORE_BTC = "store:{store}:BTC:available"
POLICIES = {"BTC": {"require_allowlist": False, "max_per_transaction": "1"}}


@dataclass
class ChainApi:
    api: Api
    chain: SimulatedChain
    account_id: str
    operator_token: str
    second_operator_token: str

    @property
    def node(self) -> Node:
        return self.api.node

    def address(self, owner: str = "") -> str:
        return self.node.custody.addresses.issue(self.account_id, owner=owner).address.address

    def poll(self) -> None:
        health = self.node.chains.monitor.poll(CHAIN, force=True)
        assert not health.error, health.error

    def reconcile_due(self) -> None:
        reconciler = self.node.chains.reconciler
        assert reconciler is not None
        reconciler.run_due()

    def fund(self, units: int) -> str:
        """Credit store A's BTC account in the ledger; its account code."""
        code = STORE_BTC.format(store=self.api.store_a)
        world = AccountRef.parse("operator:op:BTC:world")
        self.node.ledger.post(EntryDraft(f"fund-{units}", (
            Posting(world, -units), Posting(AccountRef.parse(code), units))))
        return code


def _destination() -> str:
    public = PrivateKey(bytes([7]) * 32).public_key.format()
    return address_from_public_key(public, AddressType.P2WPKH, Network.MAINNET)


@pytest.fixture
def chain_api(tmp_path: Path, clock: FixedClock, seed: Seed) -> Iterator[ChainApi]:
    data_dir = tmp_path / "node"
    shutil.copytree(seed.data_dir, data_dir)
    chain = SimulatedChain(seed=21)
    chain.mine(3)
    settings = load_settings(data_dir, overrides={
        "api": HIGH_LIMITS, "custody": {"network": "mainnet", "payout_policies": POLICIES}})
    node = build_node(settings, clock=clock, chains=sim_chains(chain))
    client: TestClient[Any] = TestClient(create_app(node))
    client.__enter__()
    try:
        account_id = watch_only_account(node)
        alice = node.custody.operators.add("alice").token
        bob = node.custody.operators.add("bob").token
        api = Api(client, node, clock, seed.store_a, seed.store_b, dict(seed.secrets))
        built = ChainApi(api, chain, account_id, alice, bob)
        built.poll()
        yield built
    finally:
        client.__exit__(None, None, None)
        node.close()


# -- the matrix ------------------------------------------------------------------------------

Request = tuple[str, dict[str, Any] | None, dict[str, str]]  # url, json body, extra headers


def _generate(c: ChainApi) -> Request:
    return f"{BASE}/wallet/generate", {"accountId": c.account_id}, {}


def _balance(c: ChainApi) -> Request:
    return f"{BASE}/wallet/{c.address()}/balance", None, {}


def _send(c: ChainApi) -> tuple[str, dict[str, Any], dict[str, str]]:
    body: dict[str, Any] = {"asset": "BTC", "amount": "0.001", "destination": _destination(),
            "source": "hot:BTC", "debitAccount": c.fund(1_000_000)}
    return (f"{BASE}/transaction/send", body,
            {"X-Operator-Token": c.operator_token, "Idempotency-Key": "send-1"})


def _transaction(c: ChainApi) -> Request:
    paid = c.chain.pay(c.address(), 5_000)
    c.poll()
    return f"{BASE}/transaction/{paid.txid}", None, {}


BLOCKCHAIN_MATRIX: dict[tuple[str, str], tuple[Callable[[ChainApi], Request], tuple[int, ...]]]
BLOCKCHAIN_MATRIX = {
    ("POST", f"{BASE}/wallet/generate"): (_generate, (401, 403, 403, 403, 201, 401)),
    ("GET", f"{BASE}/wallet/{{address:str}}/balance"): (
        _balance, (401, 403, 403, 403, 200, 401)),
    ("POST", f"{BASE}/transaction/send"): (_send, (401, 403, 403, 403, 202, 401)),
    ("GET", f"{BASE}/transaction/{{txid:str}}"): (_transaction, (401, 403, 403, 403, 200, 401)),
    # No fee node behind the simulator: the admin gets the 404 naming the chain (the fee
    # levels themselves are tested against regtest and anvil, test_chain_readers).
    ("GET", f"{BASE}/gas/estimate"): (
        lambda c: (f"{BASE}/gas/estimate?chain=bitcoin", None, {}),
        (401, 403, 403, 403, 404, 401)),
    ("GET", f"{BASE}/incidents"): (
        lambda c: (f"{BASE}/incidents", None, {}), (401, 403, 403, 403, 200, 401)),
}


def _headers(c: ChainApi, caller: str, extra: dict[str, str]) -> dict[str, str]:
    if caller == "revoked":
        secret = c.api.key(UNRESTRICTED)
        c.node.access.revoke_api_key(c.node.access.authenticate(secret).id)
        return {"Authorization": f"token {secret}", **extra}
    return c.api.auth(caller, **extra)


@pytest.mark.parametrize("operation", sorted(BLOCKCHAIN_MATRIX), ids=lambda o: f"{o[0]} {o[1]}")
@pytest.mark.parametrize("caller", CALLERS)
def test_blockchain_authorization_holds_when_each_caller_calls_each_route(
    chain_api: ChainApi, operation: tuple[str, str], caller: str
) -> None:
    build, expected = BLOCKCHAIN_MATRIX[operation]
    url, body, extra = build(chain_api)
    response = chain_api.api.client.request(
        operation[0], url, json=body, headers=_headers(chain_api, caller, extra))
    assert response.status_code == expected[CALLERS.index(caller)], response.text


@pytest.mark.parametrize(
    ("permission", "allowed"),
    [(BLOCKCHAIN_VIEW, {"balance", "transaction", "incidents"}),
     (BLOCKCHAIN_ADDRESSES, {"generate", "balance", "transaction", "incidents"}),
     (BLOCKCHAIN_SEND, {"send", "balance", "transaction", "incidents"})],
)
def test_narrow_blockchain_scope_reaches_only_what_it_names(
    chain_api: ChainApi, permission: str, allowed: set[str]
) -> None:
    auth = {"Authorization": f"token {chain_api.api.key(permission)}"}
    builders: dict[str, Callable[[ChainApi], Request]] = {
        "generate": _generate, "balance": _balance, "send": _send,
        "transaction": _transaction, "incidents": lambda c: (f"{BASE}/incidents", None, {}),
    }
    for name, build in builders.items():
        url, body, extra = build(chain_api)
        method = "POST" if name in ("generate", "send") else "GET"
        status = chain_api.api.client.request(method, url, json=body,
                                              headers={**auth, **extra}).status_code
        assert (status < 400) == (name in allowed), (name, status)
        assert status in (200, 201, 202, 403)


# -- what the routes answer ----------------------------------------------------------------


def _admin(c: ChainApi, **extra: str) -> dict[str, str]:
    return c.api.auth("admin", **extra)


def test_generate_issues_the_next_address_once_per_idempotency_key(chain_api: ChainApi) -> None:
    body = {"accountId": chain_api.account_id, "owner": f"store:{chain_api.api.store_a}",
            "reference": "order-17"}
    client = chain_api.api.client
    first = client.post(f"{BASE}/wallet/generate", json=body,
                        headers=_admin(chain_api, **{"Idempotency-Key": "gen-1"}))
    again = client.post(f"{BASE}/wallet/generate", json=body,
                        headers=_admin(chain_api, **{"Idempotency-Key": "gen-1"}))
    other = client.post(f"{BASE}/wallet/generate", json=body,
                        headers=_admin(chain_api, **{"Idempotency-Key": "gen-2"}))
    assert first.status_code == again.status_code == other.status_code == 201
    assert first.json() == again.json()
    data = first.json()
    assert data["address"].startswith("bc1q")
    assert (data["owner"], data["reference"], data["chain"]) == (
        f"store:{chain_api.api.store_a}", "order-17", "bitcoin")
    assert other.json()["index"] == data["index"] + 1
    issued = chain_api.node.custody.store.address(data["address"])
    assert issued is not None
    assert issued.reference == "order-17"


def _names(problem: dict[str, Any], what: str) -> bool:
    """Whether a problem document names ``what``: a field path, a detail, or its message."""
    named = [e["path"] for e in problem.get("errors", [])]
    named += [str(v) for v in problem.get("details", {}).values()]
    return any(what in n for n in named) or what in problem["message"]


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [({"accountId": "ka_nope"}, 404, "key account ka_nope"),
     ({"accountId": "{account}", "owner": "nobody"}, 422, "owner"),
     ({"accountId": "{account}", "reference": "x" * 201}, 422, "reference")],
)
def test_generate_names_the_field_when_the_request_is_wrong(
    chain_api: ChainApi, body: dict[str, str], status: int, named: str
) -> None:
    body = {k: v.format(account=chain_api.account_id) for k, v in body.items()}
    response = chain_api.api.client.post(f"{BASE}/wallet/generate", json=body,
                                         headers=_admin(chain_api))
    assert response.status_code == status, response.text
    assert _names(response.json(), named), response.json()


def test_generate_refuses_unknown_fields_when_a_client_sends_them(chain_api: ChainApi) -> None:
    response = chain_api.api.client.post(
        f"{BASE}/wallet/generate", json={"accountId": chain_api.account_id, "index": 5},
        headers=_admin(chain_api))
    assert response.status_code == 400
    assert "index" in response.text


def test_balance_shows_ledger_pending_and_chain_views_when_an_address_is_paid(
    chain_api: ChainApi,
) -> None:
    address = chain_api.address(owner=f"store:{chain_api.api.store_a}")
    chain_api.chain.pay(address, 70_000)
    chain_api.chain.mine(1)
    chain_api.chain.pay(address, 1_000)  # unconfirmed
    chain_api.poll()
    response = chain_api.api.client.get(f"{BASE}/wallet/{address}/balance",
                                        headers=_admin(chain_api))
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["address"]["address"] == address
    assert data["balances"] == [{
        "chain": "bitcoin", "asset": "BTC", "ledger": "0.00070000", "pending": "0.00001000",
        "onChain": "0.00070000", "settledHeight": chain_api.chain.tip.height,
        "unsettled": False, "error": "",
    }]


def test_balance_shows_the_native_coin_when_an_issued_address_was_never_paid(
    chain_api: ChainApi,
) -> None:
    address = chain_api.address()
    response = chain_api.api.client.get(f"{BASE}/wallet/{address}/balance",
                                        headers=_admin(chain_api))
    assert response.status_code == 200
    [holding] = response.json()["balances"]
    assert (holding["asset"], holding["ledger"], holding["pending"], holding["onChain"]) == (
        "BTC", "0.00000000", "0.00000000", "0.00000000")


def test_balance_is_404_when_the_node_never_issued_the_address(chain_api: ChainApi) -> None:
    response = chain_api.api.client.get(f"{BASE}/wallet/{_destination()}/balance",
                                        headers=_admin(chain_api))
    assert response.status_code == 404
    assert _names(response.json(), "never issued this address")


def test_send_answers_202_pending_approval_and_never_signs(chain_api: ChainApi) -> None:
    url, body, extra = _send(chain_api)
    response = chain_api.api.client.post(url, json=body, headers=_admin(chain_api, **extra))
    assert response.status_code == 202, response.text
    data = response.json()
    assert data["status"] == "pending_approval"
    assert data["approvalsRequired"] == 1  # the policy needs none: the API asks for one
    assert data["txid"] is None
    assert "dpg payout approve" in data["nextStep"]
    payout = chain_api.node.custody.payouts.payout(data["payoutId"])
    assert payout.raw_tx is None
    held = chain_api.node.queries.account(AccountRef.parse(
        STORE_BTC.format(store=chain_api.api.store_a).replace("available", "held")))
    assert held is not None
    assert held.balance == 100_000


def test_send_replays_and_refuses_a_reused_key_when_retried(chain_api: ChainApi) -> None:
    url, body, extra = _send(chain_api)
    client = chain_api.api.client
    first = client.post(url, json=body, headers=_admin(chain_api, **extra))
    again = client.post(url, json=body, headers=_admin(chain_api, **extra))
    changed = client.post(url, json={**body, "amount": "0.002"},
                          headers=_admin(chain_api, **extra))
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert changed.status_code == 409
    assert len(chain_api.node.custody.payouts.payouts()) == 1


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [({"amount": "0.000000001"}, 422, "amount"),
     ({"amount": "-1"}, 422, "amount"),
     ({"asset": "NOPE"}, 404, "asset"),
     ({"asset": "USD"}, 422, "asset"),
     ({"destination": "bc1qnotanaddress"}, 422, "destination"),
     ({"debitAccount": "garbage"}, 422, "debitAccount"),
     ({"source": "ka_unknown"}, 404, "key account ka_unknown"),
     ({"amount": "2"}, 422, "per_transaction_limit")],
)
def test_send_names_the_problem_when_the_request_is_wrong(
    chain_api: ChainApi, change: dict[str, str], status: int, field: str
) -> None:
    url, body, extra = _send(chain_api)
    response = chain_api.api.client.post(url, json={**body, **change},
                                         headers=_admin(chain_api, **extra))
    assert response.status_code == status, response.text
    assert _names(response.json(), field), response.json()
    assert chain_api.node.custody.payouts.payouts() == []


def test_send_needs_an_operator_token_and_an_idempotency_key(chain_api: ChainApi) -> None:
    url, body, _ = _send(chain_api)
    client = chain_api.api.client
    no_token = client.post(url, json=body, headers=_admin(chain_api, **{"Idempotency-Key": "k"}))
    assert no_token.status_code == 401
    assert "X-Operator-Token" in no_token.json()["message"]
    no_key = client.post(url, json=body,
                         headers=_admin(chain_api, **{"X-Operator-Token":
                                                      chain_api.operator_token}))
    assert no_key.status_code == 422
    assert no_key.json()["errors"][0]["path"] == "idempotencyKey"


def test_transaction_shows_payments_with_confirmations_when_mined(chain_api: ChainApi) -> None:
    address = chain_api.address()
    paid = chain_api.chain.pay(address, 9_000)
    chain_api.chain.mine(3)
    chain_api.poll()
    response = chain_api.api.client.get(f"{BASE}/transaction/{paid.txid}",
                                        headers=_admin(chain_api))
    assert response.status_code == 200, response.text
    [payment] = response.json()["payments"]
    assert (payment["address"], payment["amount"], payment["status"],
            payment["confirmations"]) == (address, "0.00009000", "credited", 3)
    assert response.json()["payouts"] == []


@pytest.mark.parametrize(("txid", "status", "named"),
                         [("zz", 422, "txid"), ("ab" * 32, 404, "no record of this transaction")])
def test_transaction_names_the_txid_when_it_is_malformed_or_unknown(
    chain_api: ChainApi, txid: str, status: int, named: str
) -> None:
    response = chain_api.api.client.get(f"{BASE}/transaction/{txid}", headers=_admin(chain_api))
    assert response.status_code == status
    assert _names(response.json(), named), response.json()


@pytest.mark.parametrize("chain", ["", "Bitcoin!", "x" * 41])
def test_gas_estimate_refuses_a_malformed_chain_name(chain_api: ChainApi, chain: str) -> None:
    response = chain_api.api.client.get(f"{BASE}/gas/estimate?chain={chain}",
                                        headers=_admin(chain_api))
    assert response.status_code == 400
    assert "chain" in response.text


def test_incidents_list_a_reconciliation_mismatch_with_its_addresses(
    chain_api: ChainApi,
) -> None:
    address = chain_api.address()
    paid = chain_api.chain.pay(address, 50_000)
    chain_api.chain.mine(1)
    chain_api.poll()
    theft = chain_api.chain.make_tx([paid.outpoint(0)],
                                    [Output(chain_api.chain.new_address(), 49_000)])
    chain_api.chain.broadcast(theft)
    chain_api.chain.mine(1)
    chain_api.poll()
    chain_api.reconcile_due()
    response = chain_api.api.client.get(f"{BASE}/incidents", headers=_admin(chain_api))
    [incident] = response.json()
    assert incident["kind"] == "reconciliation_mismatch"
    assert address in incident["details"]["differences"]


# -- server/info -----------------------------------------------------------------------------


def test_server_info_reports_each_chain_without_addresses_to_any_key(
    chain_api: ChainApi,
) -> None:
    address = chain_api.address()
    paid = chain_api.chain.pay(address, 50_000)
    chain_api.chain.mine(1)
    chain_api.poll()
    theft = chain_api.chain.make_tx([paid.outpoint(0)],
                                    [Output(chain_api.chain.new_address(), 49_000)])
    chain_api.chain.broadcast(theft)
    chain_api.chain.mine(1)
    chain_api.poll()
    chain_api.reconcile_due()
    response = chain_api.api.client.get("/api/v1/server/info",
                                        headers=chain_api.api.auth("store_b"))
    assert response.status_code == 200
    info = response.json()
    [sync] = info["syncStatus"]
    tip = chain_api.chain.tip.height
    assert info["supportedPaymentMethods"] == ["BTC-CHAIN"]
    assert info["fullySynched"] is True
    assert (sync["chain"], sync["state"], sync["chainHeight"], sync["syncHeight"],
            sync["lag"], sync["available"]) == ("bitcoin", "synced", tip, tip, 0, True)
    assert (sync["openIncidents"], sync["incidentKinds"], sync["reconciliation"],
            sync["reconciliationDifferences"]) == (1, ["reconciliation_mismatch"],
                                                   "mismatch", 1)
    assert address not in response.text


def test_server_info_shows_a_paused_chain_as_not_synched(chain_api: ChainApi) -> None:
    chain_api.chain.mine(8)
    chain_api.poll()
    chain_api.chain.reorg(7)
    chain_api.poll()
    info = chain_api.api.client.get("/api/v1/server/info", headers=_admin(chain_api)).json()
    [sync] = info["syncStatus"]
    assert info["fullySynched"] is False
    assert (sync["state"], sync["available"], sync["incidentKinds"]) == (
        "paused", False, ["deep_reorg"])
    assert "reorganisation of depth 7" in sync["paused"]


def test_server_info_reports_an_unreachable_node_without_its_credentials(
    tmp_path: Path, clock: FixedClock, seed: Seed
) -> None:
    data_dir = tmp_path / "node"
    shutil.copytree(seed.data_dir, data_dir)
    settings = load_settings(data_dir, overrides={"api": HIGH_LIMITS, "chains": {"bitcoin": {
        # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
        "rpc_url": "http://127.0.0.1:9/wallet/sekrit?apikey=abc123", "rpc_user": "rpc",
        "rpc_password": "hunter2", "network": "regtest", "timeout_seconds": 2}}})
    node = build_node(settings, clock=clock)
    try:
        with TestClient(create_app(node)) as client:
            health = node.chains.monitor.poll(CHAIN, force=True)
            assert health.error  # the watcher's poll failed; nothing was applied
            response = client.get("/api/v1/server/info",
                                  headers={"Authorization": f"token {seed.secrets['admin']}"})
    finally:
        node.close()
    assert response.status_code == 200
    info = response.json()
    [sync] = info["syncStatus"]
    assert info["fullySynched"] is False
    assert (sync["chain"], sync["state"], sync["available"], sync["failures"]) == (
        "bitcoin", "failing", False, 1)
    assert "cannot be reached" in sync["lastError"]
    for secret in ("sekrit", "abc123", "hunter2"):
        assert secret not in response.text
