"""EVM addresses: EIP-55 vectors, key -> address against eth-keys, BIP44 paths."""

from __future__ import annotations

import pytest
from eth_keys.datatypes import PrivateKey as EthPrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from dpgnode.domain.custody.bip32 import HARDENED
from dpgnode.domain.custody.evm import (
    checksum_encode,
    evm_account_path,
    evm_address_from_public_key,
    evm_address_path,
    keccak256,
    parse_evm_address,
)
from dpgnode.errors import ValidationError

CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# EIP-55 "test cases": all caps, all lower, and normal (mixed) checksummed addresses.
EIP55 = [
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]


def test_keccak_is_the_ethereum_variant_when_hashing_empty_input() -> None:
    assert keccak256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )


@pytest.mark.parametrize("text", EIP55)
def test_eip55_vector_is_its_own_checksum_when_encoded(text: str) -> None:
    parsed = parse_evm_address(text)
    assert checksum_encode(parsed.raw) == text
    assert parsed.text == text
    assert parsed.checksummed == (text[2:] not in (text[2:].lower(), text[2:].upper()))


@pytest.mark.parametrize("text", EIP55[4:])
def test_unchecksummed_forms_are_accepted_when_all_one_case(text: str) -> None:
    assert parse_evm_address(text.lower()).text == text
    assert parse_evm_address("0x" + text[2:].upper()).text == text
    assert not parse_evm_address(text.lower()).checksummed


@pytest.mark.parametrize("text", EIP55[4:])
def test_mixed_case_with_a_wrong_checksum_is_refused_when_parsed(text: str) -> None:
    flip = next(i for i, c in enumerate(text) if i > 1 and c.isalpha())
    typo = text[:flip] + text[flip].swapcase() + text[flip + 1 :]
    with pytest.raises(ValidationError, match="checksum") as caught:
        parse_evm_address(typo, field="recipient")
    assert caught.value.field == "recipient"


MALFORMED = [
    "",
    "0x",
    "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0x5aAeb6053F3E94C9b9A09f3366",
    "0xgaAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed0",
    "vitalik.eth",
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_evm_address_is_refused_when_parsed(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_evm_address(text)


@settings(max_examples=200, deadline=None)
@given(secret=st.integers(1, CURVE_ORDER - 1))
def test_address_from_public_key_matches_eth_keys_when_derived(secret: int) -> None:
    private = EthPrivateKey(secret.to_bytes(32, "big"))
    expected = private.public_key.to_checksum_address()
    compressed = private.public_key.to_compressed_bytes()
    assert evm_address_from_public_key(compressed) == expected
    assert evm_address_from_public_key(b"\x04" + private.public_key.to_bytes()) == expected


def test_invalid_public_key_is_refused_when_deriving_an_address() -> None:
    with pytest.raises(ValidationError):
        evm_address_from_public_key(b"\x02" + bytes(32))


def test_bip44_paths_are_the_ethereum_defaults_when_built() -> None:
    h = HARDENED
    assert evm_account_path(0) == (44 + h, 60 + h, h)
    assert evm_address_path(3, 7) == (44 + h, 60 + h, 3 + h, 0, 7)
    with pytest.raises(ValidationError):
        evm_account_path(HARDENED)
    with pytest.raises(ValidationError):
        evm_address_path(0, -1)
