"""``dpg wallet``, ``dpg operator``, ``dpg payout``, ``dpg audit`` against real data directories.

Seeded wallets go through the real signer: a SoftHSM2 development token made by
``dpg hsm init`` in the test's data directory (skipped with an install hint when SoftHSM2 is
missing; with ``CI`` set it fails instead).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dpgnode.domain.ledger import AccountRef, EntryDraft, Posting
from dpgnode.node import build_node
from dpgnode.settings import load_settings
from tests.support.custody import BTC_DEST, BTC_OTHER, VECTOR_MNEMONIC
from tests.support.softhsm import require_softhsm
from tests.unit.cli.conftest import Invoke

ZPUB = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDK"
    "f31mGDtKsAYz2oz2AGutZYs"
)
XPRV = (
    "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU"
    "3TGtRBeJgk33yuGBxrMPHi"
)
POLICY_TOML = f"""
[custody]
network = "regtest"
gap_limit = 2

[custody.payout_policies.BTC]
max_per_transaction = "1"
approval_threshold = "0.1"
approvals_required = 1
allowed_destinations = ["{BTC_DEST}"]
"""


def as_json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def custody(initialised: Invoke, data_dir: Path) -> Invoke:
    # The file `dpg init` wrote holds only commented defaults, one header per section.
    (data_dir / "dpg.toml").write_text(POLICY_TOML)
    return initialised


@pytest.fixture
def hsm(custody: Invoke) -> Invoke:
    require_softhsm()
    result = custody("hsm", "init")
    assert result.exit_code == 0, result.output
    return custody


def operator(dpg: Invoke, name: str) -> str:
    token: str = as_json(dpg("operator", "add", name, "--json"))["token"]
    return token


class TestWallet:
    def test_create_prints_the_mnemonic_once_and_stores_xpubs(
        self, hsm: Invoke, data_dir: Path
    ) -> None:
        created = as_json(hsm("wallet", "create", "--words", "12", "--json"))
        assert len(created["mnemonic"].split()) == 12
        assert [a["scheme"] for a in created["accounts"]] == ["bip84", "evm"]
        assert (created["network"], created["canSpend"]) == ("regtest", True)
        shown = as_json(hsm("wallet", "show", created["id"], "--json"))
        assert "mnemonic" not in shown
        assert created["mnemonic"] not in (data_dir / "dpg.sqlite3").read_bytes().decode(
            "latin-1")

    def test_import_from_stdin_derives_the_published_vector(self, hsm: Invoke) -> None:
        imported = as_json(hsm("wallet", "import", "--stdin", "--network", "mainnet",
                               "--scheme", "bip84", "--json", input=VECTOR_MNEMONIC + "\n"))
        (account,) = imported["accounts"]
        assert account["xpub"] == ZPUB
        issued = as_json(hsm("wallet", "new-address", account["id"], "--json"))
        assert issued["address"] == "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"

    def test_import_from_the_hidden_prompt_when_no_stdin_flag(self, hsm: Invoke) -> None:
        result = hsm("wallet", "import", "--network", "regtest", input=VECTOR_MNEMONIC + "\n")
        assert result.exit_code == 0, result.output
        assert "abandon" not in result.stdout

    def test_bad_mnemonic_is_refused_without_echo(self, hsm: Invoke) -> None:
        phrase = VECTOR_MNEMONIC.replace("about", "zoo")
        result = hsm("wallet", "import", "--stdin", input=phrase + "\n")
        assert result.exit_code == 1
        assert "zoo" not in result.output

    def test_private_key_is_refused_without_echo_when_added(self, custody: Invoke) -> None:
        result = custody("wallet", "add-xpub", XPRV)
        assert result.exit_code == 1
        assert XPRV[:20] not in result.output
        assert as_json(custody("wallet", "list", "--json")) == []

    def test_watch_only_pool_warns_when_the_gap_passes_the_limit(self, custody: Invoke) -> None:
        added = as_json(custody("wallet", "add-xpub", ZPUB, "--network", "mainnet", "--json"))
        account = added["accounts"][0]["id"]
        for _ in range(2):
            result = custody("wallet", "new-address", account, "--reference", "inv")
            assert (result.exit_code, "warning" in result.output) == (0, False)
        third = custody("wallet", "new-address", account)
        assert "exceed the gap limit 2" in third.output
        gap = as_json(custody("wallet", "gap", account, "--json"))
        assert (gap["issued"], gap["gap"], gap["gapLimitNeeded"]) == (3, 3, 3)
        first = as_json(custody("wallet", "addresses", account, "--json"))[0]["address"]
        assert custody("wallet", "mark-used", first).exit_code == 0
        used = as_json(custody("wallet", "addresses", account, "--used", "--json"))
        assert [a["index"] for a in used] == [0]


class TestOperatorsAndPayouts:
    def fund(self, data_dir: Path) -> None:
        node = build_node(load_settings(data_dir))
        try:
            world = AccountRef.parse("operator:op:BTC:world")
            store = AccountRef.parse("store:st_1:BTC:available")
            node.ledger.post(EntryDraft("f", (Posting(world, -10**9), Posting(store, 10**9))))
        finally:
            node.close()

    def test_operator_commands_issue_list_and_disable(self, custody: Invoke) -> None:
        token = operator(custody, "alice")
        assert token.startswith("dpgop_")
        listed = as_json(custody("operator", "list", "--json"))
        assert [(o["name"], o["active"]) for o in listed] == [("alice", True)]
        assert token not in json.dumps(listed)
        assert custody("operator", "disable", "alice").exit_code == 0
        listing = custody("payout", "list", env={"DPG_OPERATOR_TOKEN": token})
        assert listing.exit_code == 0  # reading needs no token
        refused = custody("payout", "cancel", "po_x", env={"DPG_OPERATOR_TOKEN": token})
        assert (refused.exit_code, "disabled" in refused.output) == (1, True)

    def test_request_without_a_token_is_refused(self, custody: Invoke) -> None:
        result = custody("payout", "request", "--asset", "BTC", "--to", BTC_DEST, "--amount",
                         "0.2", "--source", "hot:BTC", "--debit", "st_1")
        assert result.exit_code == 1
        assert "DPG_OPERATOR_TOKEN" in result.output

    def test_policy_refusal_names_the_rule_and_holds_nothing(
        self, custody: Invoke, data_dir: Path
    ) -> None:
        self.fund(data_dir)
        env = {"DPG_OPERATOR_TOKEN": operator(custody, "alice")}
        result = custody("payout", "request", "--asset", "BTC", "--to", BTC_OTHER, "--amount",
                         "0.2", "--source", "hot:BTC:regtest", "--debit", "st_1", env=env)
        assert result.exit_code == 1
        assert "allow-list" in result.output
        assert as_json(custody("payout", "list", "--json")) == []
        records = as_json(custody("audit", "list", "--json"))
        assert records[-1]["rule"] == "destination_not_allowed"

    @pytest.mark.parametrize(
        ("args", "hint"),
        [(["--amount", "0.123456789"], "--amount"), (["--asset", "NOPE"], "--asset"),
         (["--debit", "store:st_1:ETH:available"], "--debit")],
    )
    def test_malformed_requests_are_usage_errors(
        self, custody: Invoke, args: list[str], hint: str
    ) -> None:
        base = {"--asset": "BTC", "--to": BTC_DEST, "--amount": "0.2",
                "--source": "hot:BTC:regtest", "--debit": "st_1"}
        base.update(dict(zip(args[::2], args[1::2], strict=True)))
        flat = [part for pair in base.items() for part in pair]
        env = {"DPG_OPERATOR_TOKEN": operator(custody, "alice")}
        result = custody("payout", "request", *flat, env=env)
        assert result.exit_code == 2, result.output
        assert hint in result.output

    def test_approval_flow_fails_at_signing_without_a_chain_and_releases_the_hold(
        self, hsm: Invoke, data_dir: Path
    ) -> None:
        self.fund(data_dir)
        alice, bob = operator(hsm, "alice"), operator(hsm, "bob")
        requested = as_json(hsm(
            "payout", "request", "--asset", "BTC", "--to", BTC_DEST, "--amount", "0.2",
            "--source", "hot:BTC:regtest", "--debit", "st_1", "--key", "po-1", "--json",
            env={"DPG_OPERATOR_TOKEN": alice},
        ))
        assert (requested["status"], requested["approvalsRequired"]) == ("pending_approval", 1)
        self_approval = hsm("payout", "approve", requested["id"],
                            env={"DPG_OPERATOR_TOKEN": alice})
        assert (self_approval.exit_code, "cannot approve" in self_approval.output) == (1, True)
        token_file = data_dir / "bob.token"
        token_file.write_text(bob)
        approved = hsm("payout", "approve", requested["id"], "--token-file", str(token_file))
        assert approved.exit_code == 1
        assert "hold was released" in approved.output
        shown = as_json(hsm("payout", "show", requested["id"], "--json"))
        assert shown["status"] == "failed"
        assert [a["operatorId"] for a in shown["approvals"]] != []
        balances = as_json(hsm("ledger", "balances", "--owner-id", "st_1", "--json"))
        held = [b for b in balances if b["kind"] == "held"]
        assert held[0]["balance"] == "0.00000000"
        verified = as_json(hsm("audit", "verify", "--json"))
        assert verified["ok"]

    def test_cancel_releases_the_hold(self, custody: Invoke, data_dir: Path) -> None:
        self.fund(data_dir)
        env = {"DPG_OPERATOR_TOKEN": operator(custody, "alice")}
        requested = as_json(custody(
            "payout", "request", "--asset", "BTC", "--to", BTC_DEST, "--amount", "0.5",
            "--source", "hot:BTC:regtest", "--debit", "store:st_1:BTC:available", "--json",
            env=env,
        ))
        result = custody("payout", "cancel", requested["id"], "--reason", "typo", env=env)
        assert result.exit_code == 0
        listed = as_json(custody("payout", "list", "--status", "cancelled", "--json"))
        assert [p["id"] for p in listed] == [requested["id"]]
