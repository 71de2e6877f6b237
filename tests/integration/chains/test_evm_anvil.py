"""EIP-1559 transactions built and signed by our code, accepted by a real anvil.

anvil's dev account only funds our key's address and deploys the test ERC-20
(``tests/contracts``); the transactions under test are built by
``dpgnode.domain.custody.evm_tx``, signed through the ``Signer`` port (in-memory and SoftHSM2)
by ``dpgnode.services.custody.tx_signing`` and sent raw. Balances must move exactly: value
plus ``gasUsed * effectiveGasPrice`` for the sender, value for the recipient.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_typing import ChecksumAddress, HexStr
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import Web3RPCError
from web3.types import Wei

from dpgnode.domain.custody.evm import evm_address_from_public_key, parse_evm_address
from dpgnode.domain.custody.evm_tx import erc20_transfer, native_transfer
from dpgnode.errors import ValidationError
from dpgnode.ports.signer import HotKeyRef
from dpgnode.services.custody.tx_signing import SignedTx, sign_evm
from tests.contracts.compile import load_artifact
from tests.integration.chains.signing import CountingSigner
from tests.support.anvil import CHAIN_ID, DEV_KEYS, AnvilNode

pytestmark = pytest.mark.integration

TIP = 10**9  # 1 gwei
RECIPIENT: ChecksumAddress = Account.from_key(DEV_KEYS[1]).address


@pytest.fixture(scope="module")
def token(anvil: AnvilNode) -> Contract:
    """The test ERC-20 (6 decimals), deployed once by anvil's first dev account."""
    artifact = load_artifact()
    w3 = anvil.w3
    deployer = w3.eth.accounts[0]
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx_hash = factory.constructor("Test Tether", "TUSDT", 6).transact({"from": deployer})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    assert receipt["status"] == 1
    deployed = w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
    assert isinstance(deployed, Contract)
    return deployed


def fund_eth(anvil: AnvilNode, address: ChecksumAddress, wei: int) -> None:
    w3 = anvil.w3
    tx_hash = w3.eth.send_transaction(
        {"from": w3.eth.accounts[0], "to": address, "value": Wei(wei)}
    )
    assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["status"] == 1


def fees(anvil: AnvilNode) -> tuple[int, int]:
    base: int = anvil.w3.eth.get_block("latest")["baseFeePerGas"]
    return TIP, 2 * base + TIP


def send(anvil: AnvilNode, signed: SignedTx) -> Any:
    sent = anvil.w3.eth.send_raw_transaction(HexStr(signed.raw_hex))
    assert "0x" + bytes(sent).hex() == signed.txid
    receipt = anvil.w3.eth.wait_for_transaction_receipt(sent, timeout=30)
    assert receipt["status"] == 1
    return receipt


@pytest.fixture
def sender(anvil: AnvilNode, signer: CountingSigner, hot_key: HotKeyRef) -> ChecksumAddress:
    """Our key's address, funded with 2 ETH for value and gas."""
    address = Web3.to_checksum_address(evm_address_from_public_key(signer.public_key(hot_key)))
    fund_eth(anvil, address, 2 * 10**18)
    return address


class TestNativeTransfer:
    def test_balances_move_exactly_when_signed_transfer_is_mined(
        self, anvil: AnvilNode, signer: CountingSigner, hot_key: HotKeyRef, sender: ChecksumAddress
    ) -> None:
        w3 = anvil.w3
        tip, max_fee = fees(anvil)
        value = 123_456_789_012_345_678
        tx = native_transfer(
            chain_id=CHAIN_ID,
            nonce=w3.eth.get_transaction_count(sender),
            to=parse_evm_address(RECIPIENT).raw,
            value_wei=value,
            max_priority_fee_per_gas=tip,
            max_fee_per_gas=max_fee,
        )
        sender_before = w3.eth.get_balance(sender)
        recipient_before = w3.eth.get_balance(RECIPIENT)
        signed = sign_evm(signer, tx, hot_key, sender=sender)
        assert signer.calls == ["ecdsa"]
        receipt = send(anvil, signed)
        assert receipt["gasUsed"] == 21_000
        gas_cost = receipt["gasUsed"] * receipt["effectiveGasPrice"]
        assert w3.eth.get_balance(sender) == sender_before - value - gas_cost
        assert w3.eth.get_balance(RECIPIENT) == recipient_before + value
        mined = w3.eth.get_transaction(HexStr(signed.txid))
        assert mined["type"] == 2
        assert mined["from"] == sender

    def test_node_refuses_when_signed_for_another_chain(
        self, anvil: AnvilNode, signer: CountingSigner, hot_key: HotKeyRef, sender: ChecksumAddress
    ) -> None:
        tip, max_fee = fees(anvil)
        tx = native_transfer(
            chain_id=1,
            nonce=anvil.w3.eth.get_transaction_count(sender),
            to=parse_evm_address(RECIPIENT).raw,
            value_wei=1,
            max_priority_fee_per_gas=tip,
            max_fee_per_gas=max_fee,
        )
        signed = sign_evm(signer, tx, hot_key, sender=sender)
        with pytest.raises(Web3RPCError, match="chain id"):
            anvil.w3.eth.send_raw_transaction(HexStr(signed.raw_hex))


class TestErc20Transfer:
    def test_token_balances_move_exactly_when_signed_transfer_is_mined(
        self,
        anvil: AnvilNode,
        token: Contract,
        signer: CountingSigner,
        hot_key: HotKeyRef,
        sender: ChecksumAddress,
    ) -> None:
        w3 = anvil.w3
        mint = token.functions.mint(sender, 5_000_000).transact({"from": w3.eth.accounts[0]})
        assert w3.eth.wait_for_transaction_receipt(mint, timeout=30)["status"] == 1
        units = 1_234_567
        token_address = parse_evm_address(token.address).raw
        recipient = parse_evm_address(RECIPIENT).raw
        tip, max_fee = fees(anvil)
        data = token.encode_abi("transfer", args=[RECIPIENT, units])
        estimate = w3.eth.estimate_gas({"from": sender, "to": token.address, "data": data})
        tx = erc20_transfer(
            chain_id=CHAIN_ID,
            nonce=w3.eth.get_transaction_count(sender),
            token=token_address,
            recipient=recipient,
            units=units,
            max_priority_fee_per_gas=tip,
            max_fee_per_gas=max_fee,
            gas=estimate * 6 // 5,
        )
        assert "0x" + tx.data.hex() == data  # our calldata is web3's ABI encoding
        sender_tokens = token.functions.balanceOf(sender).call()
        recipient_tokens = token.functions.balanceOf(RECIPIENT).call()
        sender_eth = w3.eth.get_balance(sender)

        receipt = send(anvil, sign_evm(signer, tx, hot_key, sender=sender))

        assert token.functions.balanceOf(sender).call() == sender_tokens - units
        assert token.functions.balanceOf(RECIPIENT).call() == recipient_tokens + units
        gas_cost = receipt["gasUsed"] * receipt["effectiveGasPrice"]
        assert w3.eth.get_balance(sender) == sender_eth - gas_cost
        (event,) = token.events.Transfer().process_receipt(receipt)
        assert (event["args"]["from"], event["args"]["to"]) == (sender, RECIPIENT)
        assert event["args"]["value"] == units


class TestRefusals:
    def test_nothing_is_signed_when_sender_is_not_the_key_address(
        self, anvil: AnvilNode, signer: CountingSigner, hot_key: HotKeyRef, sender: ChecksumAddress
    ) -> None:
        tip, max_fee = fees(anvil)
        tx = native_transfer(
            chain_id=CHAIN_ID,
            nonce=0,
            to=parse_evm_address(RECIPIENT).raw,
            value_wei=1,
            max_priority_fee_per_gas=tip,
            max_fee_per_gas=max_fee,
        )
        with pytest.raises(ValidationError):
            sign_evm(signer, tx, hot_key, sender=RECIPIENT)
        assert signer.calls == []

    def test_nothing_is_signed_when_destination_is_malformed(
        self, signer: CountingSigner, hot_key: HotKeyRef
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            parse_evm_address("0x70997970C51812dc3A010C7d01b50e0d17dc79c8")  # checksum typo
        assert "checksum" in caught.value.message
        assert signer.calls == []
