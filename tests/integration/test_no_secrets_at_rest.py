"""R22: no private key, seed or mnemonic at rest: database, files, logs, environment -> 0 hits.

A data directory goes through the custody flows with the real signer (a SoftHSM2 token made
by ``dpg hsm init``'s code): create a wallet, import a mnemonic with a passphrase, add a
watch-only key, generate a hot key, and pay out from the HD wallets and the hot key on
Bitcoin and EVM, plus a wallet transfer through the HTTP API. Logs are captured at DEBUG
with SQLAlchemy's statement log on (bound parameters included) for the whole time.

Then the SQLite database (its dump and its raw files), every file of the data directory
except the HSM's own token store, the captured logs and the process environment are
searched for: serialized extended private keys (xprv/tprv/yprv/zprv/uprv/vprv), WIF keys
(base58check with prefix 0x80 or 0xef), BIP39 phrases (12+ consecutive words of the English
list), the passphrase, and every private key the flows used as raw bytes or 64-digit hex.
The scanner itself is checked against planted secrets, so "0 hits" means something.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from litestar.testing import TestClient
from mnemonic import Mnemonic

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.api.app import create_app
from dpgnode.domain.access import UNRESTRICTED
from dpgnode.domain.custody.addresses import script_pubkey_from_public_key
from dpgnode.domain.custody.bip32 import ExtendedPrivateKey, master_from_seed
from dpgnode.domain.custody.btc_spend import Utxo
from dpgnode.domain.custody.encoding import b58check_decode, b58check_encode
from dpgnode.domain.custody.mnemonic import mnemonic_to_seed
from dpgnode.domain.custody.networks import AddressType, Network
from dpgnode.domain.custody.payout import PayoutStatus
from dpgnode.domain.custody.wallet import Scheme
from dpgnode.domain.ledger import AccountRef, OwnerType
from dpgnode.errors import ValidationError
from dpgnode.logging import configure_logging
from dpgnode.node import Node, build_node
from dpgnode.services.custody.payouts import PayoutRequest
from dpgnode.services.custody.wallets import AccountSpec
from dpgnode.settings import LogSettings, load_settings
from tests.support.custody import BTC_DEST, EVM_DEST, VECTOR_MNEMONIC, StaticFunding, fund
from tests.support.softhsm import require_softhsm

pytestmark = pytest.mark.integration

PASSPHRASE = "correct horse battery staple 42"
_EXT_PRIVATE = re.compile(r"[xtyzuv]prv[1-9A-HJ-NP-Za-km-z]{100,112}")
_BASE58_RUN = re.compile(r"[1-9A-HJ-NP-Za-km-z]{51,52}")
_WORDS = frozenset(Mnemonic("english").wordlist)
COIN = 100_000_000


@dataclass
class Secrets:
    """What must never be found: phrases, the passphrase, and private keys in every form."""

    phrases: list[str] = field(default_factory=list)
    keys: set[bytes] = field(default_factory=set)

    def add_tree(self, phrase: str, passphrase: str, paths: list[str]) -> None:
        self.phrases.append(phrase)
        seed = mnemonic_to_seed(phrase, passphrase)
        self.keys.add(seed)  # the BIP39 seed itself, 64 bytes
        master = master_from_seed(seed, Network.REGTEST)
        for path in ["m", *paths]:
            node = master.derive_path(path)
            self.keys.add(node.secret)
            for branch in (0, 1):
                for index in range(8):
                    self.keys.add(_child(node, branch, index))


def _child(node: ExtendedPrivateKey, branch: int, index: int) -> bytes:
    try:
        return node.child(branch).child(index).secret
    except ValidationError:  # an EVM account has only its receiving branch
        return b""


def scan(text: str, secrets: Secrets) -> list[str]:
    """Every hit in ``text``: a description, never the secret itself."""
    hits = [f"extended private key at {m.start()}" for m in _EXT_PRIVATE.finditer(text)]
    for match in _BASE58_RUN.finditer(text):
        try:
            payload = b58check_decode(match.group(), field="wif")
        except ValidationError:
            continue
        if payload[:1] in (b"\x80", b"\xef") and len(payload) in (33, 34):
            hits.append(f"WIF key at {match.start()}")
    words = re.split(r"[^a-z]+", text.lower())
    run = 0
    for word in words:
        run = run + 1 if word in _WORDS else 0
        if run == 12:
            hits.append("12+ consecutive BIP39 words")
    lowered = text.lower()
    for key in secrets.keys:
        if key and key.hex() in lowered:
            hits.append("a private key as hex")
    for phrase in secrets.phrases:
        if phrase in text:
            hits.append("a mnemonic")
    if PASSPHRASE in text:
        hits.append("the BIP39 passphrase")
    return hits


def scan_bytes(data: bytes, secrets: Secrets) -> list[str]:
    hits = [f"raw private key in {len(data)} bytes" for key in secrets.keys if key and key in data]
    return hits + scan(data.decode("latin-1"), secrets)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    old_config = structlog.get_config()
    root = logging.getLogger()
    old_level, old_handlers = root.level, list(root.handlers)
    sql_logger = logging.getLogger("sqlalchemy.engine")
    old_sql_level = sql_logger.level
    configure_logging(LogSettings(level="debug", format="json"), stream=stream)
    sql_logger.setLevel(logging.INFO)  # statements with their bound parameters
    yield stream
    sql_logger.setLevel(old_sql_level)
    root.handlers[:] = old_handlers
    root.setLevel(old_level)
    structlog.configure(**old_config)


def _settings(data_dir: Path) -> Any:
    return load_settings(data_dir, overrides={"custody": {
        "network": "regtest",
        "payout_policies": {
            "BTC": {"allowed_destinations": [BTC_DEST], "approval_threshold": "0.5",
                    "approvals_required": 1},
            "ETH": {"require_allowlist": False},
        },
    }})


def _exercise(node: Node, signer: Any, secrets: Secrets, data_dir: Path) -> None:
    custody = node.custody
    created = custody.keychains.create(signer, words=24, network=Network.REGTEST,
                                       label="treasury")
    secrets.add_tree(created.mnemonic, "", [a.path for a in created.view.accounts])
    imported = custody.keychains.import_mnemonic(
        signer, VECTOR_MNEMONIC, passphrase=PASSPHRASE, network=Network.REGTEST,
        accounts=[AccountSpec(Scheme.BIP84), AccountSpec(Scheme.EVM), AccountSpec(Scheme.BIP86)],
    )
    secrets.add_tree(VECTOR_MNEMONIC, PASSPHRASE, [a.path for a in imported.accounts])
    watch = master_from_seed(mnemonic_to_seed(VECTOR_MNEMONIC, "w"), Network.REGTEST)
    secrets.add_tree(VECTOR_MNEMONIC, "w", ["m/84'/1'/0'"])
    custody.keychains.add_watch_only(
        watch.derive_path("m/84'/1'/0'").public().serialize("vpub"), network=Network.REGTEST)

    btc, evm = created.view.accounts
    funding = StaticFunding()
    for i in range(2):
        funding.pay_to(btc.id, custody.addresses.issue(btc.id).address, COIN, txid_byte=i + 1)
    hot = signer.generate_hot_key("hot:BTC:regtest")
    funding.utxos["hot:BTC:regtest"] = [
        Utxo("cd" * 32, 0, COIN, script_pubkey_from_public_key(hot, AddressType.P2WPKH),
             "hot:BTC:regtest")]
    debit = AccountRef.parse("store:st_1:BTC:available")
    fund(node, debit, 10 * COIN, "f-btc")
    fund(node, AccountRef.parse("store:st_1:ETH:available"), 10**19, "f-eth")
    alice = custody.operators.add("alice").operator
    bob = custody.operators.add("bob").operator

    def pay(asset: str, units: int, to: str, source: str, key: str) -> Any:
        request = PayoutRequest(asset, units, to, AccountRef.parse(f"store:st_1:{asset}:available"),
                                source, key)
        return custody.payouts.request(alice, request, signer=signer, funding=funding)

    assert pay("BTC", COIN // 10, BTC_DEST, btc.id, "p1").status is PayoutStatus.SIGNED
    big = pay("BTC", COIN * 6 // 10, BTC_DEST, btc.id, "p2")
    approved = custody.payouts.approve(big.id, bob, signer=signer, funding=funding)
    assert approved.status is PayoutStatus.SIGNED
    assert pay("BTC", COIN // 10, BTC_DEST, "hot:BTC:regtest", "p3").status is PayoutStatus.SIGNED
    assert pay("ETH", 10**17, EVM_DEST, evm.id, "p4").status is PayoutStatus.SIGNED
    assert pay("ETH", 10**17, EVM_DEST, imported.accounts[1].id + "/3", "p5").status is (
        PayoutStatus.SIGNED)
    assert custody.audit.verify().ok

    secret = node.access.create_api_key("r22", [UNRESTRICTED]).secret
    source = node.wallets.open(OwnerType.STORE, "st_1", "BTC").wallet
    target = node.wallets.open(OwnerType.STORE, "st_2", "BTC").wallet
    with TestClient(create_app(node)) as client:
        response = client.post(
            f"/api/v1/wallets/{source.id}/transfer",
            json={"toWalletId": target.id, "amount": "0.01"},
            headers={"Authorization": f"token {secret}", "Idempotency-Key": "r22-1"},
        )
        assert response.status_code == 201, response.text


def test_scanner_finds_every_kind_of_secret_when_they_are_planted() -> None:
    secrets = Secrets()
    secrets.add_tree(VECTOR_MNEMONIC, "", ["m/84'/0'/0'"])
    master = master_from_seed(mnemonic_to_seed(VECTOR_MNEMONIC), Network.MAINNET)
    key = master.derive_path("m/84'/0'/0'/0/0").secret
    planted = {
        "xprv": master.serialize(),
        "tprv": master_from_seed(mnemonic_to_seed(VECTOR_MNEMONIC), Network.TESTNET).serialize(),
        "wif": b58check_encode(b"\x80" + key + b"\x01"),
        "wif-test": b58check_encode(b"\xef" + key),
        "phrase": " ".join(Mnemonic("english").to_mnemonic(bytes(16)).split()),
        "hex": f'{{"k": "{key.hex().upper()}"}}',
    }
    for name, text in planted.items():
        assert scan(f"log line: {text} end", secrets), name
    assert scan_bytes(b"\x00" + key + b"\x00", secrets)
    assert scan("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu zpub6rFR7y4Q2AijBE", secrets) == []


def test_nothing_secret_is_at_rest_when_custody_flows_have_run(
    tmp_path: Path, captured_logs: io.StringIO
) -> None:
    require_softhsm()
    from dpgnode.signer import build_signer, init_dev_token

    data_dir = tmp_path / "data"
    settings = _settings(data_dir)
    init_dev_token(settings)
    secrets = Secrets()
    node = build_node(settings, clock=FixedClock(), upgrade=True)
    try:
        with build_signer(settings) as signer:
            _exercise(node, signer, secrets, data_dir)
    finally:
        node.close()
    assert len(secrets.keys) > 100

    hits: dict[str, list[str]] = {}
    with sqlite3.connect(data_dir / "dpg.sqlite3") as db:
        dump = "\n".join(db.iterdump())
    assert 'INSERT INTO "custody_keychains"' in dump  # the dump really holds the wallets
    hits["database dump"] = scan(dump, secrets)
    token_store = data_dir / "hsm" / "tokens"
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        if token_store in path.parents:
            continue  # the HSM's own (encrypted) object store stands in for the hardware
        hits[str(path.relative_to(data_dir))] = scan_bytes(path.read_bytes(), secrets)
    assert "dpg.sqlite3" in hits
    logs = captured_logs.getvalue()
    assert "INSERT INTO custody_keychains" in logs  # the statement log really was captured
    hits["logs"] = scan(logs, secrets)
    hits["environment"] = scan("\n".join(f"{k}={v}" for k, v in os.environ.items()), secrets)
    assert {where: found for where, found in hits.items() if found} == {}
