"""Bitcoin address parsing and encoding: BIP173/BIP350 vectors, base58check, networks."""

from __future__ import annotations

import base58
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpgnode.domain.custody.addresses import (
    ScriptType,
    address_from_public_key,
    address_from_script,
    parse_address,
    script_pubkey_from_public_key,
    taproot_output_key,
)
from dpgnode.domain.custody.encoding import b58check_decode, b58check_encode, hash160
from dpgnode.domain.custody.networks import AddressType, Network, parse_network
from dpgnode.errors import ValidationError

# BIP350 "valid segwit addresses" (mainnet and testnet) with their scriptPubKeys.
VALID_SEGWIT = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", Network.MAINNET,
     "0014751e76e8199196d454941c45d1b3a323f1433bd6", ScriptType.P2WPKH),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", Network.TESTNET,
     "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262", ScriptType.P2WSH),
    ("bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y", Network.MAINNET,
     "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6",
     ScriptType.WITNESS_UNKNOWN),
    ("BC1SW50QGDZ25J", Network.MAINNET, "6002751e", ScriptType.WITNESS_UNKNOWN),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", Network.MAINNET,
     "5210751e76e8199196d454941c45d1b3a323", ScriptType.WITNESS_UNKNOWN),
    ("tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy", Network.TESTNET,
     "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433", ScriptType.P2WSH),
    ("tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c", Network.TESTNET,
     "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433", ScriptType.P2TR),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", Network.MAINNET,
     "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798", ScriptType.P2TR),
]  # fmt: skip

# BIP350 "invalid segwit addresses": refused on every network.
INVALID_SEGWIT = [
    "tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
    "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf",
    "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",
    "tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47",
    "bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4",
    "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",
    "bc1pw5dgrnzv",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf",
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j",
    "bc1gmk9yu",
    "BC1SW50QA3JX3S",
    "bc1zw508d6qejxtdg4y5r3zarvaryvg6kdaj",
    "bc1q9zpgru",
]

BASE58 = [
    ("1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH", Network.MAINNET,
     "76a914751e76e8199196d454941c45d1b3a323f1433bd688ac", ScriptType.P2PKH),
    ("3LRW7jeCvQCRdPF8S3yUCfRAx4eqXFmdcr", Network.MAINNET,
     "a914cd7b44d0b03f2d026d1e586d7ae18903b0d385f687", ScriptType.P2SH),
    ("mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r", Network.TESTNET,
     "76a914751e76e8199196d454941c45d1b3a323f1433bd688ac", ScriptType.P2PKH),
    ("2NByiBUaEXrhmqAsg7BbLpcQSAQs1EDwt5w", Network.REGTEST,
     "a914cd7b44d0b03f2d026d1e586d7ae18903b0d385f687", ScriptType.P2SH),
]  # fmt: skip

ALL_NETWORKS = list(Network)


class TestParseAddress:
    @pytest.mark.parametrize(("text", "network", "script", "script_type"), VALID_SEGWIT + BASE58)
    def test_valid_address_gives_its_script_pubkey_when_parsed(
        self, text: str, network: Network, script: str, script_type: ScriptType
    ) -> None:
        parsed = parse_address(text, network)
        assert parsed.script_pubkey.hex() == script
        assert parsed.script_type is script_type
        assert parsed.network is network
        assert address_from_script(parsed.script_pubkey, network) == parsed.text
        assert parsed.text == (text.lower() if parsed.witness_version is not None else text)

    @pytest.mark.parametrize("text", INVALID_SEGWIT)
    @pytest.mark.parametrize("network", ALL_NETWORKS)
    def test_bip350_invalid_address_is_refused_when_parsed(
        self, text: str, network: Network
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            parse_address(text, network, field="destination")
        assert caught.value.field == "destination"

    @pytest.mark.parametrize(
        ("text", "network"),
        [
            ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", Network.TESTNET),
            ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", Network.REGTEST),
            ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", Network.MAINNET),
            ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", Network.REGTEST),
            ("1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH", Network.TESTNET),
            ("mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r", Network.MAINNET),
        ],
    )
    def test_address_of_another_network_is_refused_when_parsed(
        self, text: str, network: Network
    ) -> None:
        with pytest.raises(ValidationError, match=f"not for {network.value}"):
            parse_address(text, network)

    def test_testnet_address_is_accepted_on_signet_when_parsed(self) -> None:
        parsed = parse_address("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
                               Network.SIGNET)  # fmt: skip
        assert parsed.network is Network.SIGNET

    @pytest.mark.parametrize(
        "text", ["", "   ", "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMh", "1111111111", "0x00", "bc1"]
    )
    def test_garbage_is_refused_when_parsed(self, text: str) -> None:
        with pytest.raises(ValidationError):
            parse_address(text, Network.MAINNET)

    def test_unknown_base58_version_is_refused_when_parsed(self) -> None:
        with pytest.raises(ValidationError, match="unknown base58"):
            parse_address(b58check_encode(b"\x30" + bytes(20)), Network.MAINNET)


class TestFromPublicKey:
    # BIP86: internal key -> output key for m/86'/0'/0'/0/0 of "abandon ... about".
    def test_taproot_tweak_matches_bip86_when_applied(self) -> None:
        internal = bytes.fromhex("cc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115")
        expected = "a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c"
        assert taproot_output_key(internal).hex() == expected
        assert taproot_output_key(b"\x02" + internal).hex() == expected

    @pytest.mark.parametrize("address_type", [t for t in AddressType if t is not AddressType.EVM])
    @pytest.mark.parametrize("network", ALL_NETWORKS)
    def test_address_and_script_agree_when_built_from_a_key(
        self, address_type: AddressType, network: Network
    ) -> None:
        key = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
        address = address_from_public_key(key, address_type, network)
        assert parse_address(address, network).script_pubkey == script_pubkey_from_public_key(
            key, address_type
        )

    def test_evm_and_invalid_keys_are_refused_when_building_a_script(self) -> None:
        key = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
        with pytest.raises(ValidationError):
            script_pubkey_from_public_key(key, AddressType.EVM)
        with pytest.raises(ValidationError):
            address_from_public_key(key, AddressType.EVM, Network.MAINNET)
        with pytest.raises(ValidationError):
            script_pubkey_from_public_key(b"\x02" + bytes(32), AddressType.P2WPKH)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(min_size=1, max_size=80))
def test_base58check_agrees_with_the_base58_package_when_round_tripped(payload: bytes) -> None:
    text = b58check_encode(payload)
    assert text == base58.b58encode_check(payload).decode()
    assert b58check_decode(text, field="x") == payload


witness_scripts = st.one_of(
    st.binary(min_size=20, max_size=20).map(lambda h: b"\x00\x14" + h),
    st.binary(min_size=32, max_size=32).map(lambda h: b"\x00\x20" + h),
    st.tuples(st.integers(1, 16), st.binary(min_size=2, max_size=40)).map(
        lambda vp: bytes([0x50 + vp[0], len(vp[1])]) + vp[1]
    ),
    st.binary(min_size=20, max_size=20).map(lambda h: b"\x76\xa9\x14" + h + b"\x88\xac"),
    st.binary(min_size=20, max_size=20).map(lambda h: b"\xa9\x14" + h + b"\x87"),
)


@settings(max_examples=300, deadline=None)
@given(script=witness_scripts, network=st.sampled_from(ALL_NETWORKS))
def test_script_round_trips_through_its_address_when_standard(
    script: bytes, network: Network
) -> None:
    address = address_from_script(script, network)
    assert address is not None
    assert parse_address(address, network).script_pubkey == script
    assert parse_address(address.upper() if address[:2] in ("bc", "tb") else address,
                         network).script_pubkey == script  # fmt: skip


def test_non_standard_script_has_no_address_when_encoded() -> None:
    assert address_from_script(b"\x6a\x04deadbeef", Network.MAINNET) is None
    assert address_from_script(b"\x00\x15" + bytes(21), Network.MAINNET) is None
    assert address_from_script(b"", Network.MAINNET) is None


def test_hash160_matches_the_well_known_generator_hash_when_computed() -> None:
    g = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
    assert hash160(g).hex() == "751e76e8199196d454941c45d1b3a323f1433bd6"


@pytest.mark.parametrize(
    ("text", "network"),
    [("mainnet", Network.MAINNET), ("main", Network.MAINNET), ("Regtest", Network.REGTEST),
     ("test", Network.TESTNET), ("signet", Network.SIGNET)],
)  # fmt: skip
def test_network_name_parses_when_known(text: str, network: Network) -> None:
    assert parse_network(text) is network


def test_unknown_network_name_is_refused_when_parsed() -> None:
    with pytest.raises(ValidationError):
        parse_network("liquid")
