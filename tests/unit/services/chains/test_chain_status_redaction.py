"""Chain errors shown by ``server/info`` and ``dpg chain status`` carry no credential."""

from __future__ import annotations

import pytest

from dpgnode.services.chains.redaction import redact

LEAKS = [
    ("https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef timed out",
     "0123456789abcdef"),
    ("http://rpcuser:hunter2@127.0.0.1:8332/wallet/x refused", "hunter2"),
    ("https://eth.example/rpc?apikey=sk_live_secret answered 429", "sk_live_secret"),
    ("node said token=abc.def.ghi", "abc.def.ghi"),
    ("password: correct-horse", "correct-horse"),
    ("wss://user:pw@ws.example:443/path?key=zzz closed", "pw@"),
]


@pytest.mark.parametrize(("text", "secret"), LEAKS)
def test_redact_removes_the_secret_when_an_error_text_carries_one(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_redact_keeps_scheme_host_and_port_when_a_url_is_named() -> None:
    assert redact("http://rpcuser:pw@127.0.0.1:8332/wallet/x refused") == (
        "http://127.0.0.1:8332 refused")


def test_redact_bounds_the_length_when_a_node_answers_at_length() -> None:
    assert len(redact("x" * 5000)) == 300
