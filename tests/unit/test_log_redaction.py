"""Secrets never reach a log line: each kind tries to leak, through every path a log takes.

Kinds: API keys, operator tokens, Authorization values (token, Bearer, Basic), passwords and
PINs by field name, BIP39 phrases, seeds, extended private keys, WIF keys, credentials in
URLs and query strings, PEM private keys, ``SecretStr`` values and raw bytes. Paths: a field,
a nested field, the message itself, an exception's message, and a standard-library logger
with %-arguments (what SQLAlchemy, httpx and granian use). What logs need stays readable:
txids, EVM addresses, key ids, ordinary words.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from mnemonic import Mnemonic
from pydantic import SecretStr

from dpgnode.domain.custody.bip32 import master_from_seed
from dpgnode.domain.custody.encoding import b58check_encode
from dpgnode.domain.custody.networks import Network
from dpgnode.logging import configure_logging, log_context
from dpgnode.redaction import MASK, is_secret_name, redact_text, redact_value
from dpgnode.settings import LogSettings

SEED = bytes(range(64))
API_KEY = secrets.token_hex(20)  # the shape AccessService issues
OPERATOR_TOKEN = "dpgop_" + secrets.token_hex(32)
PHRASE_12 = Mnemonic("english").to_mnemonic(bytes(range(16)))
PHRASE_24 = Mnemonic("english").to_mnemonic(bytes(range(32)))
XPRV = master_from_seed(SEED, Network.MAINNET).serialize()
TPRV = master_from_seed(SEED, Network.REGTEST).serialize()
ZPRV = master_from_seed(SEED, Network.MAINNET).serialize("zprv")
WIF = b58check_encode(b"\x80" + bytes(range(1, 33)) + b"\x01")
TESTNET_WIF = b58check_encode(b"\xef" + bytes(range(1, 33)))
PASSWORD = "hunter2-Sup3r-s3cret"
PEM = (
    "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
    "-----END PRIVATE KEY-----"
)
TXID = "f" * 8 + "0123456789abcdef" * 3 + "a" * 8
EVM_ADDRESS = "0x" + "ab" * 20

# (description, text carrying the secret, the secret that must vanish)
LEAKS_IN_TEXT = [
    ("api key alone", f"created key {API_KEY} for shop", API_KEY),
    ("token header", f"Authorization: token {API_KEY}", API_KEY),
    ("token scheme", f"sent 'token {API_KEY}'", API_KEY),
    ("bearer", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN",
     "eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN"),
    ("basic", "headers: {'authorization': 'Basic dXNlcjpwYXNzd29yZDEyMw=='}",
     "dXNlcjpwYXNzd29yZDEyMw=="),
    ("operator token", f"approve with {OPERATOR_TOKEN}", OPERATOR_TOKEN[6:]),
    ("mnemonic", f"imported {PHRASE_12}", PHRASE_12),
    ("mnemonic, 24 words, broken lines", PHRASE_24.replace(" ", "\n", 5), PHRASE_24.split()[7]),
    ("xprv", f"derived {XPRV}", XPRV),
    ("tprv", f"derived {TPRV}.", TPRV),
    ("zprv", f"[{ZPRV}]", ZPRV),
    ("wif", f"key={WIF}", WIF),
    ("testnet wif", f"imported '{TESTNET_WIF}'", TESTNET_WIF),
    ("database url", f"connect postgresql+psycopg://dpg:{PASSWORD}@db:5432/dpg", PASSWORD),
    ("rpc url", f"POST http://rpcuser:{PASSWORD}@127.0.0.1:18443/", PASSWORD),
    ("token in userinfo", "GET https://ghp_0123456789abcdefABCDEF@github.example/x",
     "ghp_0123456789abcdefABCDEF"),
    ("query api key", "GET https://rpc.example/v3?apiKey=AbC123xyz789&chain=1", "AbC123xyz789"),
    ("query token", "https://h.example/cb?access_token=zz9988776655&x=1", "zz9988776655"),
    ("pem", f"loaded {PEM} ok", "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg"),
    ("dict repr", f"params {{'user': 'dpg', 'password': '{PASSWORD}'}}", PASSWORD),
    ("config dump", 'hsm pin=4321 wallet_seed="00aa11bb22"', "00aa11bb22"),
    ("json body", f'{{"apiKey": "{API_KEY[:12]}", "name": "x"}}', API_KEY[:12]),
]


@pytest.mark.parametrize(
    ("kind", "text", "secret"), LEAKS_IN_TEXT, ids=[k for k, *_ in LEAKS_IN_TEXT]
)
def test_secret_is_masked_when_it_appears_in_a_text(kind: str, text: str, secret: str) -> None:
    redacted = redact_text(text)
    assert secret not in redacted
    assert MASK in redacted


@pytest.mark.parametrize(
    "name",
    ["password", "api_key", "apiKey", "X-Api-Key", "authorization", "Authorization", "seed",
     "mnemonic", "passphrase", "webhookSecret", "pin", "user_pin", "hsmPin", "so-pin", "wif",
     "private_key", "cookie", "token", "access_token", "credentials", "dsn", "xprv"],
)
def test_field_is_masked_when_its_name_says_secret(name: str) -> None:
    assert is_secret_name(name)
    assert redact_value({name: "anything at all"}) == {name: MASK}


@pytest.mark.parametrize(
    "name", ["mapping", "shipping", "spinner", "key_id", "request_id", "txid", "status", "path",
             "author", "duration_ms", "invoice_id"],
)
def test_field_is_kept_when_its_name_only_looks_alike(name: str) -> None:
    assert not is_secret_name(name)


class TestWhatLogsNeedStays:
    @pytest.mark.parametrize(
        "text",
        [f"payout broadcast txid {TXID}", f"paid to {EVM_ADDRESS}", "key key_0193ab revoked",
         "abandon the plan: ability to retry is able", "route /api/v1/stores/{storeId}",
         "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "amount 0.00012345 BTC",
         "token dpg label missing", "https://example.com/path?page=2"],
    )
    def test_text_is_unchanged_when_it_holds_no_secret(self, text: str) -> None:
        assert redact_text(text) == text

    def test_base58_run_is_kept_when_its_checksum_is_not_a_keys(self) -> None:
        not_a_key = "5" + "H" * 50
        assert redact_text(not_a_key) == not_a_key


class TestValues:
    def test_secretstr_is_masked_when_logged_under_any_name(self) -> None:
        assert redact_value({"config": SecretStr("pw")}) == {"config": MASK}

    def test_bytes_are_summarised_when_logged(self) -> None:
        assert redact_value(SEED) == "<64 bytes>"

    def test_nested_containers_are_searched_when_logged(self) -> None:
        value: Any = {"request": {"headers": [("authorization", f"token {API_KEY}")],
                                  "meta": {"password": PASSWORD}}}
        assert API_KEY not in json.dumps(redact_value(value))
        assert PASSWORD not in json.dumps(redact_value(value))

    def test_objects_are_rendered_then_searched_when_logged(self) -> None:
        class Conn:
            def __repr__(self) -> str:
                return f"Conn(url='postgresql://u:{PASSWORD}@h/db')"

        assert PASSWORD not in redact_value(Conn())


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging(LogSettings(level="debug", format="json"), stream=stream)
    yield stream
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


class TestThroughTheLogger:
    """End to end: configure_logging, then try every way a secret could get out."""

    def test_nothing_leaks_when_every_path_carries_secrets(self, json_log: io.StringIO) -> None:
        log = structlog.get_logger("leaky")
        log.info(f"message with {API_KEY} and {PHRASE_12}", pin="1234",
                 nested={"webhookSecret": "whsec_abc", "ok": XPRV}, listed=[WIF])
        log.info("positional %s", f"postgresql://dpg:{PASSWORD}@db/dpg")
        try:
            raise ConnectionError(
                f"cannot reach http://user:{PASSWORD}@rpc:8332 ({OPERATOR_TOKEN})"
            )
        except ConnectionError:
            log.exception("rpc failed")
            logging.getLogger("sqlalchemy.engine").exception(
                "params %s", {"password": PASSWORD, "seed": SEED.hex()}
            )
        logging.getLogger("httpx").info("HTTP Request: GET https://h/?api_key=%s", API_KEY)
        text = json_log.getvalue()
        for secret in (API_KEY, PHRASE_12, "1234", "whsec_abc", XPRV, WIF, PASSWORD,
                       OPERATOR_TOKEN[6:], SEED.hex()):
            assert secret not in text
        records = _records(json_log)
        assert len(records) == 5  # every line is still one JSON object
        assert records[2]["exception"][0]["exc_type"] == "ConnectionError"

    def test_traceback_has_no_local_variables_when_an_exception_is_logged(
        self, json_log: io.StringIO
    ) -> None:
        def authenticate(secret_material: str) -> None:
            raise ValueError("refused")

        try:
            authenticate("plain-words-that-no-pattern-knows")
        except ValueError:
            structlog.get_logger("t").exception("auth failed")
        assert "plain-words-that-no-pattern-knows" not in json_log.getvalue()

    def test_bound_ids_are_on_each_line_when_logged_in_a_log_context(
        self, json_log: io.StringIO
    ) -> None:
        with log_context(txid=TXID, invoice_id="inv_1", payout_id=None):
            structlog.get_logger("t").info("seen")
        structlog.get_logger("t").info("after")
        inside, after = _records(json_log)
        assert inside["txid"] == TXID
        assert inside["invoice_id"] == "inv_1"
        assert "payout_id" not in inside
        assert "txid" not in after
