"""The watch set's fast address decoding against the domain's full ``parse_address``."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpgnode.adapters.chains.bitcoin_watchset import WatchedScripts
from dpgnode.domain.custody.addresses import address_from_public_key, parse_address
from dpgnode.domain.custody.encoding import b58check_encode, b58encode, encode_segwit
from dpgnode.domain.custody.networks import AddressType, Network, network_params
from dpgnode.errors import ValidationError

BITCOIN_TYPES = [AddressType.P2WPKH, AddressType.P2TR, AddressType.P2SH_P2WPKH, AddressType.P2PKH]
KEY = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")


def watched(network: Network, *addresses: str) -> WatchedScripts:
    watch = WatchedScripts(network)
    watch.add(addresses)
    return watch


class TestDecoding:
    @pytest.mark.parametrize("network", list(Network))
    @pytest.mark.parametrize("address_type", BITCOIN_TYPES)
    def test_script_and_text_match_parse_address_for_every_type_the_node_issues(
        self, network: Network, address_type: AddressType
    ) -> None:
        address = address_from_public_key(KEY, address_type, network)

        watch = watched(network, address)

        script = parse_address(address, network).script_pubkey
        assert list(watch) == [script]
        assert script in watch
        assert watch[script] == address

    @settings(max_examples=200, deadline=None)
    @given(st.sampled_from(list(Network)), st.sampled_from([(0, 20), (0, 32), (1, 32)]),
           st.binary(min_size=32, max_size=32))
    def test_any_witness_program_round_trips(
        self, network: Network, kind: tuple[int, int], program: bytes
    ) -> None:
        version, size = kind
        address = encode_segwit(network_params(network).hrp, version, program[:size])

        watch = watched(network, address)

        [script] = list(watch)
        assert script == parse_address(address, network).script_pubkey
        assert watch[script] == address

    @settings(max_examples=200, deadline=None)
    @given(st.sampled_from(list(Network)), st.booleans(), st.binary(min_size=20, max_size=20))
    def test_any_base58_address_round_trips(
        self, network: Network, p2sh: bool, payload: bytes
    ) -> None:
        params = network_params(network)
        version = params.p2sh_version if p2sh else params.p2pkh_version
        address = b58check_encode(bytes([version]) + payload)

        watch = watched(network, address)

        [script] = list(watch)
        assert script == parse_address(address, network).script_pubkey
        assert watch[script] == address

    def test_upper_case_bech32_is_matched_and_given_back_as_issued(self) -> None:
        address = address_from_public_key(KEY, AddressType.P2WPKH, Network.MAINNET).upper()

        watch = watched(Network.MAINNET, address)

        assert watch[parse_address(address, Network.MAINNET).script_pubkey] == address


class TestWatching:
    def test_add_is_cumulative_and_idempotent(self) -> None:
        first, second = (address_from_public_key(KEY, t, Network.REGTEST)
                         for t in (AddressType.P2WPKH, AddressType.P2TR))
        watch = WatchedScripts(Network.REGTEST)

        assert watch.add([first]) == 1
        assert watch.add([second, first]) == 1
        assert watch.add([first, first]) == 0
        assert len(watch) == 2

    def test_unwatched_script_is_not_found(self) -> None:
        watch = watched(Network.MAINNET, address_from_public_key(KEY, AddressType.P2PKH,
                                                                 Network.MAINNET))
        assert b"\x00\x14" + bytes(20) not in watch
        with pytest.raises(KeyError):
            watch[b"\x00\x14" + bytes(20)]

    def test_addresses_before_a_malformed_one_are_watched(self) -> None:
        good = address_from_public_key(KEY, AddressType.P2WPKH, Network.REGTEST)
        watch = WatchedScripts(Network.REGTEST)
        with pytest.raises(ValidationError):
            watch.add([good, "nonsense"])
        assert len(watch) == 1


def _bad_base58_canonical() -> str:
    """A valid P2PKH payload written with one leading "1" too many (decodes to the same bytes)."""
    payload = bytes([0x00]) + hashlib.sha256(b"k").digest()[:20]
    return "1" + b58encode(payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4])


MAINNET_P2WPKH = address_from_public_key(KEY, AddressType.P2WPKH, Network.MAINNET)
TAPROOT_ZERO = encode_segwit("bc", 1, bytes(32))
MALFORMED = {  # name: (text, what the message says)
    "empty": ("", "not an address of mainnet"),
    "testnet on mainnet": (
        address_from_public_key(KEY, AddressType.P2WPKH, Network.TESTNET), "not an address"),
    "regtest on mainnet": (
        address_from_public_key(KEY, AddressType.P2TR, Network.REGTEST), "not an address"),
    "testnet base58 on mainnet": (
        address_from_public_key(KEY, AddressType.P2PKH, Network.TESTNET), "not for mainnet"),
    "bech32 char b": (MAINNET_P2WPKH[:10] + "b" + MAINNET_P2WPKH[11:], "witness address"),
    "bech32 char 1 in data": (MAINNET_P2WPKH[:10] + "1" + MAINNET_P2WPKH[11:],
                              "witness address"),
    "non-ascii": (MAINNET_P2WPKH[:10] + "é" + MAINNET_P2WPKH[11:], "bech32 character"),
    "program too short": (MAINNET_P2WPKH[:-8] + MAINNET_P2WPKH[-6:], "witness address"),
    "witness v2": (encode_segwit("bc", 2, bytes(32)), "witness version 2"),
    "witness v1 20 bytes": (encode_segwit("bc", 1, bytes(20)), "20-byte program"),
    "non-zero padding": (TAPROOT_ZERO[:-7] + "p" + TAPROOT_ZERO[-6:], "padding"),
    "base58 checksum": ("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3", "checksum"),
    "base58 character 0": ("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN0", "base58 character"),
    "base58 too short": ("1BvBMSEYstWetqTFn5", "not an address"),
    "base58 non-canonical": (_bad_base58_canonical(), "canonical"),
    "base58 unknown version": (b58check_encode(bytes([0x30]) + bytes(20)), "not for mainnet"),
}


class TestMalformed:
    @pytest.mark.parametrize(("text", "reason"), MALFORMED.values(), ids=MALFORMED.keys())
    def test_malformed_or_foreign_address_raises_validation_error_naming_address(
        self, text: str, reason: str
    ) -> None:
        with pytest.raises(ValidationError, match=reason) as caught:
            watched(Network.MAINNET, text)
        assert caught.value.details["field"] == "address"

    def test_a_non_string_raises_validation_error(self) -> None:
        with pytest.raises(ValidationError):
            WatchedScripts(Network.MAINNET).add([42])  # type: ignore[list-item]
