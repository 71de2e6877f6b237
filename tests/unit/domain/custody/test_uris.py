"""BIP21 and EIP-681 payment URIs: exact amounts, strict parameters, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.uris import (
    BITCOIN,
    UINT256_MAX,
    bip21_uri,
    eip681_transfer_uri,
    eip681_uri,
    parse_bip21,
    parse_eip681,
    parse_eip681_number,
    percent_decode,
    percent_encode,
)
from dpgnode.domain.money import Amount, Asset, AssetKind
from dpgnode.errors import ValidationError

ETH = Asset("ETH", 18, "Ether", AssetKind.CRYPTO, "ethereum")
USDT = Asset("USDT-ETH", 6, "Tether USD on Ethereum", AssetKind.TOKEN, "ethereum")
# BIP21's own examples use 175tWpb8K1S7NmH4Zx6rewF9WQrcZv245W, whose base58 checksum is
# wrong (a strict parser must refuse it): the examples below keep their queries with a valid
# address (hash160 of the generator point).
BIP21_ADDRESS = "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH"
SEGWIT = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
PAYEE = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
TOKEN = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
MAX_SATS = 21_000_000 * 10**8


class TestBip21:
    @pytest.mark.parametrize(
        ("sats", "text"),
        [(1, "0.00000001"), (100_000, "0.001"), (10**8, "1"), (2_030_000_000, "20.3"),
         (MAX_SATS, "21000000"), (123_456_789, "1.23456789")],
    )  # fmt: skip
    def test_amount_is_exact_decimal_btc_when_built(self, sats: int, text: str) -> None:
        uri = bip21_uri(SEGWIT, Network.MAINNET, amount=Amount(sats, BITCOIN))
        assert uri == f"bitcoin:{SEGWIT}?amount={text}"
        parsed = parse_bip21(uri, Network.MAINNET)
        assert parsed.amount == Amount(sats, BITCOIN)

    def test_bip21_example_address_is_refused_when_its_checksum_is_wrong(self) -> None:
        with pytest.raises(ValidationError, match="checksum"):
            parse_bip21("bitcoin:175tWpb8K1S7NmH4Zx6rewF9WQrcZv245W?amount=50", Network.MAINNET)

    def test_bip21_examples_parse_when_valid(self) -> None:
        plain = parse_bip21(f"bitcoin:{BIP21_ADDRESS}?label=Luke-Jr", Network.MAINNET)
        assert (plain.amount, plain.label) == (None, "Luke-Jr")
        full = parse_bip21(
            f"bitcoin:{BIP21_ADDRESS}?amount=50&label=Luke-Jr&message=Donation%20for%20project%20xyz",
            Network.MAINNET,
        )
        assert full.amount is not None
        assert full.amount.units == 50 * 10**8
        assert full.message == "Donation for project xyz"
        other = parse_bip21(
            f"bitcoin:{BIP21_ADDRESS}?somethingyoudontunderstand=50&somethingelseyoudontget=999",
            Network.MAINNET,
        )
        assert dict(other.extra) == {
            "somethingyoudontunderstand": "50",
            "somethingelseyoudontget": "999",
        }

    def test_required_parameter_not_understood_refuses_the_uri_when_parsed(self) -> None:
        with pytest.raises(ValidationError, match="req-") as caught:
            parse_bip21(
                f"bitcoin:{BIP21_ADDRESS}?req-somethingyoudontunderstand=50"
                "&req-somethingelseyoudontget=999",
                Network.MAINNET,
            )
        assert caught.value.details["parameter"] == "req-somethingyoudontunderstand"

    def test_label_and_message_are_percent_encoded_when_built(self) -> None:
        uri = bip21_uri(SEGWIT, Network.MAINNET, label="Café & Co", message="Order #42 = 1/2")
        assert uri == (
            f"bitcoin:{SEGWIT}?label=Caf%C3%A9%20%26%20Co&message=Order%20%2342%20%3D%201%2F2"
        )
        parsed = parse_bip21(uri, Network.MAINNET)
        assert (parsed.label, parsed.message) == ("Café & Co", "Order #42 = 1/2")

    @pytest.mark.parametrize(
        ("text", "sats"), [("1.", 10**8), (".5", 5 * 10**7), ("007", 7 * 10**8)]
    )
    def test_bip21_amount_grammar_is_accepted_when_digits_surround_the_point_loosely(
        self, text: str, sats: int
    ) -> None:
        parsed = parse_bip21(f"bitcoin:{SEGWIT}?amount={text}", Network.MAINNET)
        assert parsed.amount == Amount(sats, BITCOIN)

    def test_uppercase_scheme_and_bech32_address_parse_when_from_a_qr_code(self) -> None:
        parsed = parse_bip21(f"BITCOIN:{SEGWIT.upper()}?amount=0.5", Network.MAINNET)
        assert parsed.address.text == SEGWIT
        assert parsed.amount == Amount(50_000_000, BITCOIN)

    @pytest.mark.parametrize(
        "query",
        ["amount=1e-3", "amount=0,001", "amount=-1", "amount=0.000000001", "amount=0",
         "amount=1&amount=1", "amount=1&AMOUNT=2", "amount=", "amount=.", "amount=+1",
         "amount=1%0A", "amount=%", "label=%ZZ", "label=%C3", "=1", "amount", "amount=0x10",
         "amount=1.5.1"],
    )  # fmt: skip
    def test_malformed_parameter_is_refused_when_parsed(self, query: str) -> None:
        with pytest.raises(ValidationError):
            parse_bip21(f"bitcoin:{SEGWIT}?{query}", Network.MAINNET)

    @pytest.mark.parametrize(
        ("uri", "network"),
        [(f"bitcoin:{SEGWIT}", Network.TESTNET), ("bitcoin:", Network.MAINNET),
         (f"bitcoln:{SEGWIT}", Network.MAINNET), (SEGWIT, Network.MAINNET)],
    )  # fmt: skip
    def test_wrong_scheme_or_network_is_refused_when_parsed(
        self, uri: str, network: Network
    ) -> None:
        with pytest.raises(ValidationError):
            parse_bip21(uri, network)

    def test_builder_refuses_non_btc_or_non_positive_amounts_when_built(self) -> None:
        with pytest.raises(ValidationError):
            bip21_uri(SEGWIT, Network.MAINNET, amount=Amount(1, ETH))
        with pytest.raises(ValidationError):
            bip21_uri(SEGWIT, Network.MAINNET, amount=Amount(0, BITCOIN))
        with pytest.raises(ValidationError):
            bip21_uri(SEGWIT, Network.TESTNET)
        with pytest.raises(ValidationError):
            bip21_uri(SEGWIT, Network.MAINNET, label="\ud800")


@settings(max_examples=300, deadline=None)
@given(
    sats=st.integers(1, MAX_SATS),
    label=st.none() | st.text(min_size=1, max_size=40),
    message=st.none() | st.text(min_size=1, max_size=80),
)
def test_bip21_round_trips_exactly_when_built_then_parsed(
    sats: int, label: str | None, message: str | None
) -> None:
    uri = bip21_uri(SEGWIT, Network.MAINNET, amount=Amount(sats, BITCOIN), label=label,
                    message=message)  # fmt: skip
    parsed = parse_bip21(uri, Network.MAINNET)
    assert parsed.amount == Amount(sats, BITCOIN)
    assert (parsed.label, parsed.message) == (label, message)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60))
def test_percent_encoding_round_trips_when_any_text(text: str) -> None:
    encoded = percent_encode(text)
    assert encoded.isascii()
    assert not set(encoded) & set("&=?# +")
    assert percent_decode(encoded, field="x") == text


class TestEip681:
    def test_native_request_is_built_with_integer_wei_when_given_an_amount(self) -> None:
        uri = eip681_uri(PAYEE.lower(), 1, value=Amount(2_014_000_000_000_000_000, ETH))
        assert uri == f"ethereum:{PAYEE}@1?value=2014000000000000000"
        parsed = parse_eip681(uri)
        assert parsed.target.text == PAYEE
        assert parsed.chain_id == 1
        assert parsed.value == 2_014_000_000_000_000_000
        assert parsed.amount(ETH) == Amount(2_014_000_000_000_000_000, ETH)
        assert parsed.payee == parsed.target

    def test_scientific_value_of_eip681_parses_exactly_when_given(self) -> None:
        parsed = parse_eip681(f"ethereum:{PAYEE}?value=2.014e18")
        assert parsed.value == 2_014_000_000_000_000_000
        assert parsed.chain_id is None

    def test_erc20_transfer_is_built_and_parsed_in_token_units_when_requested(self) -> None:
        uri = eip681_transfer_uri(TOKEN, 1, PAYEE, Amount(25_500_000, USDT))
        assert uri == f"ethereum:{TOKEN}@1/transfer?address={PAYEE}&uint256=25500000"
        parsed = parse_eip681(uri)
        assert parsed.function == "transfer"
        assert parsed.target.text == TOKEN
        assert parsed.recipient is not None
        assert parsed.payee.text == PAYEE
        assert parsed.token_units == 25_500_000
        assert parsed.value is None
        assert parsed.amount(USDT) == Amount(25_500_000, USDT)

    def test_eip681_spec_examples_parse_when_valid(self) -> None:
        erc20 = parse_eip681(
            "ethereum:0x89205a3a3b2a69de6dbf7f01ed13b2108b2c43e7/transfer"
            "?address=0x8e23ee67d1332ad560396262c48ffbb01f93d052&uint256=1"
        )
        assert erc20.token_units == 1
        paid = parse_eip681(f"ethereum:pay-{PAYEE.lower()}@56?value=1e18")
        assert (paid.chain_id, paid.value) == (56, 10**18)
        gas = parse_eip681(f"ethereum:{PAYEE}?value=1&gasLimit=21000&gasPrice=5e9")
        assert (gas.gas_limit, gas.gas_price) == (21000, 5 * 10**9)

    @pytest.mark.parametrize(
        "uri",
        [f"ethereum:{PAYEE}?value=1.5", f"ethereum:{PAYEE}?value=-1",
         f"ethereum:{PAYEE}?value=1e79",
         f"ethereum:{PAYEE}?value=abc", f"ethereum:{PAYEE}?value=1&value=2",
         f"ethereum:{PAYEE}?amount=1", f"ethereum:{PAYEE}@0?value=1", f"ethereum:{PAYEE}@x",
         f"ethereum:{PAYEE}@1/approve?address={PAYEE}&uint256=1",
         f"ethereum:{TOKEN}/transfer?address={PAYEE}",
         f"ethereum:{TOKEN}/transfer?uint256=1",
         f"ethereum:{TOKEN}/transfer?address={PAYEE}&uint256=1&value=5",
         f"ethereum:{TOKEN}/transfer?address=vitalik.eth&uint256=1",
         f"ethereum:{PAYEE}?gas=1&gasLimit=2",
         "ethereum:vitalik.eth?value=1", f"bitcoin:{PAYEE}", f"ethereum:{PAYEE[:-1]}"],
    )  # fmt: skip
    def test_bad_request_is_refused_when_parsed(self, uri: str) -> None:
        with pytest.raises(ValidationError):
            parse_eip681(uri)

    def test_builder_refuses_wrong_units_or_chain_when_built(self) -> None:
        with pytest.raises(ValidationError):
            eip681_uri(PAYEE, 1, value=Amount(1, USDT))
        with pytest.raises(ValidationError):
            eip681_uri(PAYEE, 0)
        with pytest.raises(ValidationError):
            eip681_transfer_uri(TOKEN, 1, PAYEE, Amount(0, USDT))
        mixed_typo = PAYEE[:3] + PAYEE[3].swapcase() + PAYEE[4:]
        with pytest.raises(ValidationError, match="checksum"):
            eip681_uri(mixed_typo, 1)


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("1000", 1000), ("2.014e18", 2_014_000_000_000_000_000), ("1e3", 1000),
     ("1.5e1", 15), (".5e1", 5), ("+7", 7), ("-0", 0), ("1E2", 100), ("10e", 10),
     ("1.000", 1), (str(UINT256_MAX), UINT256_MAX)],
)  # fmt: skip
def test_eip681_number_is_exact_when_well_formed(text: str, value: int) -> None:
    assert parse_eip681_number(text) == value


@pytest.mark.parametrize(
    "text",
    ["", ".", "e5", "1.5", "1e-3", "-1", str(UINT256_MAX + 1), "1e78", "0x10", "1_000", "5\n"],
)
def test_eip681_number_is_refused_when_not_a_whole_uint256(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_eip681_number(text)


@settings(max_examples=300, deadline=None)
@given(
    raw=st.binary(min_size=20, max_size=20),
    chain_id=st.integers(1, 2**64),
    wei=st.integers(1, UINT256_MAX),
    units=st.integers(1, UINT256_MAX),
)
def test_eip681_round_trips_exactly_when_built_then_parsed(
    raw: bytes, chain_id: int, wei: int, units: int
) -> None:
    address = "0x" + raw.hex()
    native = parse_eip681(eip681_uri(address, chain_id, value=Amount(min(wei, 10**77), ETH)))
    assert (native.target.raw, native.chain_id, native.value) == (raw, chain_id, min(wei, 10**77))
    token = parse_eip681(
        eip681_transfer_uri(TOKEN, chain_id, address, Amount(min(units, 10**77), USDT))
    )
    assert token.recipient is not None
    assert (token.recipient.raw, token.token_units) == (raw, min(units, 10**77))
