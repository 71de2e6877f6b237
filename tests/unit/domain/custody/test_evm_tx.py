"""EIP-1559 transactions and ERC-20 calldata, cross-checked against eth-account, eth-abi and rlp."""

from __future__ import annotations

import pytest
import rlp  # type: ignore[import-untyped]
from coincurve import PrivateKey
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from dpgnode.domain.custody.evm_tx import (
    ERC20_TRANSFER_SELECTOR,
    NATIVE_TRANSFER_GAS,
    UINT256_MAX,
    Eip1559Transaction,
    erc20_transfer,
    erc20_transfer_data,
    native_transfer,
    rlp_encode,
    transaction_hash,
)
from dpgnode.errors import ValidationError

SECRET = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
"""anvil's first dev account key (public knowledge; test chains only)."""
SENDER = Account.from_key(SECRET).address
TOKEN = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
RECIPIENT = bytes.fromhex("70997970c51812dc3a010c7d01b50e0d17dc79c8")
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def sign(tx: Eip1559Transaction, secret: bytes = SECRET) -> bytes:
    recoverable = PrivateKey(secret).sign_recoverable(tx.signing_hash(), hasher=None)
    r, s = int.from_bytes(recoverable[:32], "big"), int.from_bytes(recoverable[32:64], "big")
    return tx.encode_signed(recoverable[64], r, s)


def eth_account_dict(tx: Eip1559Transaction) -> dict[str, object]:
    return {
        "type": 2,
        "chainId": tx.chain_id,
        "nonce": tx.nonce,
        "to": to_checksum_address(tx.to),
        "value": tx.value_wei,
        "gas": tx.gas,
        "maxFeePerGas": tx.max_fee_per_gas,
        "maxPriorityFeePerGas": tx.max_priority_fee_per_gas,
        "data": tx.data,
        "accessList": [],
    }


_addresses = st.binary(min_size=20, max_size=20).filter(lambda b: any(b))
_transactions = st.builds(
    lambda chain, nonce, tip, extra, gas, to, value, data: Eip1559Transaction(
        chain, nonce, tip, tip + extra, gas, to, value, data
    ),
    chain=st.integers(1, 2**64 - 1),
    nonce=st.integers(0, 2**64 - 2),
    tip=st.integers(0, 10**12),
    extra=st.integers(0, 10**12),
    gas=st.integers(NATIVE_TRANSFER_GAS, 30_000_000),
    to=_addresses,
    value=st.integers(0, 2**200),
    data=st.binary(max_size=200),
)


class TestAgainstEthAccount:
    @settings(max_examples=60, deadline=None)
    @given(tx=_transactions)
    def test_raw_and_hash_match_eth_account_when_signed_by_same_key(
        self, tx: Eip1559Transaction
    ) -> None:
        reference = Account.sign_transaction(eth_account_dict(tx), SECRET)
        raw = sign(tx)  # both sign with RFC 6979 nonces, so the bytes must be identical
        assert raw == bytes(reference.raw_transaction)
        assert transaction_hash(raw) == "0x" + bytes(reference.hash).hex()
        assert Account.recover_transaction(raw) == SENDER

    def test_erc20_transfer_matches_eth_account_when_signed(self) -> None:
        tx = erc20_transfer(
            chain_id=31337,
            nonce=7,
            token=TOKEN,
            recipient=RECIPIENT,
            units=1_250_000,
            max_priority_fee_per_gas=10**9,
            max_fee_per_gas=2 * 10**9,
            gas=60_000,
        )
        reference = Account.sign_transaction(eth_account_dict(tx), SECRET)
        assert sign(tx) == bytes(reference.raw_transaction)
        assert tx.value_wei == 0
        assert tx.to == TOKEN


class TestRlp:
    _items = st.recursive(
        st.one_of(st.binary(max_size=80), st.integers(0, 2**256)),
        lambda children: st.lists(children, max_size=6),
        max_leaves=30,
    )

    @settings(max_examples=200, deadline=None)
    @given(item=_items)
    def test_encoding_matches_rlp_package_when_random(self, item: object) -> None:
        assert rlp_encode(item) == rlp.encode(item)  # type: ignore[arg-type]

    def test_negative_integer_is_refused_when_encoded(self) -> None:
        with pytest.raises(ValidationError):
            rlp_encode(-1)


class TestErc20Calldata:
    def test_selector_is_transfer_when_hashed(self) -> None:
        assert keccak(text="transfer(address,uint256)")[:4] == ERC20_TRANSFER_SELECTOR

    @settings(max_examples=50, deadline=None)
    @given(recipient=_addresses, units=st.integers(1, UINT256_MAX))
    def test_calldata_matches_abi_encoding_when_random(self, recipient: bytes, units: int) -> None:
        expected = ERC20_TRANSFER_SELECTOR + abi_encode(
            ["address", "uint256"], [to_checksum_address(recipient), units]
        )
        assert erc20_transfer_data(recipient, units) == expected

    @pytest.mark.parametrize(
        ("recipient", "units"),
        [(bytes(20), 1), (RECIPIENT, 0), (RECIPIENT, UINT256_MAX + 1), (RECIPIENT[:19], 1)],
    )
    def test_bad_recipient_or_amount_is_refused_when_encoded(
        self, recipient: bytes, units: int
    ) -> None:
        with pytest.raises(ValidationError):
            erc20_transfer_data(recipient, units)

    def test_transfer_to_the_token_itself_is_refused_when_built(self) -> None:
        with pytest.raises(ValidationError) as caught:
            erc20_transfer(
                chain_id=1,
                nonce=0,
                token=TOKEN,
                recipient=TOKEN,
                units=1,
                max_priority_fee_per_gas=1,
                max_fee_per_gas=1,
                gas=60_000,
            )
        assert caught.value.details["field"] == "recipient"


def _native(**overrides: object) -> Eip1559Transaction:
    fields: dict[str, object] = {
        "chain_id": 1,
        "nonce": 0,
        "to": RECIPIENT,
        "value_wei": 10**18,
        "max_priority_fee_per_gas": 10**9,
        "max_fee_per_gas": 3 * 10**9,
    }
    fields.update(overrides)
    return native_transfer(**fields)  # type: ignore[arg-type]


class TestValidation:
    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"max_priority_fee_per_gas": 4 * 10**9}, "max_priority_fee_per_gas"),
            ({"gas": 20_999}, "gas"),
            ({"gas": 30_000_001}, "gas"),
            ({"to": bytes(20)}, "to"),
            ({"to": RECIPIENT + b"\x00"}, "to"),
            ({"value_wei": 0}, "amount"),
            ({"chain_id": 0}, "chain_id"),
            ({"nonce": 2**64 - 1}, "nonce"),
            ({"max_fee_per_gas": 1.5}, "max_fee_per_gas"),
        ],
    )
    def test_invalid_field_is_refused_when_built(
        self, overrides: dict[str, object], field: str
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            _native(**overrides)
        assert caught.value.details["field"] == field

    def test_max_cost_counts_gas_and_value_when_computed(self) -> None:
        assert _native().max_cost_wei() == 21_000 * 3 * 10**9 + 10**18

    def test_high_s_or_bad_parity_is_refused_when_encoding_signature(self) -> None:
        tx = _native()
        with pytest.raises(ValidationError):
            tx.encode_signed(0, 1, N // 2 + 1)
        with pytest.raises(ValidationError):
            tx.encode_signed(2, 1, 1)
        with pytest.raises(ValidationError):
            tx.encode_signed(0, 0, 1)

    def test_signing_hash_commits_to_chain_id_when_chains_differ(self) -> None:
        assert _native(chain_id=1).signing_hash() != _native(chain_id=137).signing_hash()
