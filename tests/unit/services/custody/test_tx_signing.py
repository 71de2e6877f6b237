"""The signing service over an in-memory signer: what gets signed, and what is refused unsigned."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from bitcoin.core import CTransaction  # type: ignore[import-untyped]
from eth_account import Account

from dpgnode.domain.custody.addresses import script_pubkey_from_public_key
from dpgnode.domain.custody.btc_spend import FeeRate, Payment, UnsignedSpend, Utxo, plan_spend
from dpgnode.domain.custody.btc_tx import InputKind
from dpgnode.domain.custody.evm import evm_address_from_public_key
from dpgnode.domain.custody.evm_tx import Eip1559Transaction, native_transfer
from dpgnode.domain.custody.networks import AddressType
from dpgnode.errors import IntegrityError, ValidationError
from dpgnode.ports.signer import HdKeyRef, HotKeyRef, KeyRef, Signature
from dpgnode.services.custody.tx_signing import sign_bitcoin, sign_evm
from tests.support.memory_signer import MemorySigner

SEED = bytes(range(64))
DEST = b"\x00\x14" + bytes(range(20))


@dataclass
class Wallet:
    signer: MemorySigner
    hot: HotKeyRef
    hd: HdKeyRef
    scripts: dict[str, bytes] = field(default_factory=dict)


@pytest.fixture
def wallet() -> Wallet:
    signer = MemorySigner()
    hot = HotKeyRef("hot:BTC:regtest")
    signer.add_hot_key(hot.label, bytes([7]) * 32)
    hd = HdKeyRef(signer.seal_seed(SEED, aad=b"wallet-1"), "m/86'/1'/0'/0/0")
    scripts = {
        "hot": script_pubkey_from_public_key(signer.public_key(hot), AddressType.P2WPKH),
        "hd": script_pubkey_from_public_key(signer.public_key(hd), AddressType.P2TR),
    }
    return Wallet(signer, hot, hd, scripts)


def spend_from(wallet: Wallet, key_ids: list[str]) -> UnsignedSpend:
    utxos = [
        Utxo(f"{i + 1:064x}", i, 60_000, wallet.scripts[key_id], key_id)
        for i, key_id in enumerate(key_ids)
    ]
    return plan_spend(
        utxos,
        [Payment(DEST, 50_000 * len(key_ids))],
        change_script=wallet.scripts["hot"],
        fee_rate=FeeRate(2000),
    )


class TestSignBitcoin:
    def test_every_input_is_signed_when_p2wpkh_and_p2tr_are_mixed(self, wallet: Wallet) -> None:
        spend = spend_from(wallet, ["hot", "hd"])
        signed = sign_bitcoin(wallet.signer, spend, {"hot": wallet.hot, "hd": wallet.hd})
        parsed = CTransaction.deserialize(bytes.fromhex(signed.raw_hex))
        assert parsed.GetTxid()[::-1].hex() == signed.txid == spend.tx.txid()
        stacks = [list(w.scriptWitness.stack) for w in parsed.wit.vtxinwit]
        kinds = [request.kind for request in spend.signing_requests()]
        assert sorted(kinds) == [InputKind.P2TR, InputKind.P2WPKH]
        for kind, stack in zip(kinds, stacks, strict=True):
            assert len(stack) == (2 if kind is InputKind.P2WPKH else 1)
        assert [name for name, _ in wallet.signer.calls] == [
            "sign_ecdsa" if kind is InputKind.P2WPKH else "sign_schnorr" for kind in kinds
        ]

    def test_nothing_is_signed_when_an_input_has_no_key(self, wallet: Wallet) -> None:
        spend = spend_from(wallet, ["hot", "hd"])
        with pytest.raises(ValidationError) as caught:
            sign_bitcoin(wallet.signer, spend, {"hot": wallet.hot})
        assert caught.value.details["key_id"] == "hd"
        assert wallet.signer.calls == []

    def test_nothing_is_signed_when_a_key_does_not_control_its_input(self, wallet: Wallet) -> None:
        other = HotKeyRef("hot:other")
        wallet.signer.add_hot_key(other.label, bytes([9]) * 32)
        spend = spend_from(wallet, ["hd", "hot"])
        with pytest.raises(ValidationError) as caught:
            sign_bitcoin(wallet.signer, spend, {"hot": other, "hd": wallet.hd})
        assert "does not control" in caught.value.message
        assert wallet.signer.calls == []

    def test_nothing_is_signed_when_a_taproot_input_has_a_hot_key(self, wallet: Wallet) -> None:
        spend = spend_from(wallet, ["hot", "hd"])
        with pytest.raises(ValidationError):
            sign_bitcoin(wallet.signer, spend, {"hot": wallet.hot, "hd": wallet.hot})
        assert wallet.signer.calls == []

    def test_bad_signature_is_refused_when_the_signer_is_faulty(self, wallet: Wallet) -> None:
        faulty = SignsWrongDigest(wallet.signer)
        spend = spend_from(wallet, ["hot"])
        with pytest.raises(IntegrityError):
            sign_bitcoin(faulty, spend, {"hot": wallet.hot})  # type: ignore[arg-type]

    def test_bad_schnorr_signature_is_refused_when_the_signer_is_faulty(
        self, wallet: Wallet
    ) -> None:
        faulty = SignsWrongDigest(wallet.signer)
        spend = spend_from(wallet, ["hd"])
        with pytest.raises(IntegrityError, match="Schnorr"):
            sign_bitcoin(faulty, spend, {"hd": wallet.hd})  # type: ignore[arg-type]
        assert [name for name, _ in wallet.signer.calls] == ["sign_schnorr"]


@dataclass
class SignsWrongDigest:
    """A signer whose ECDSA signatures are valid, but over another digest (a broken driver)."""

    inner: MemorySigner
    recovery_id_offset: int = 0

    def public_key(self, ref: KeyRef) -> bytes:
        return self.inner.public_key(ref)

    def sign_ecdsa(self, ref: KeyRef, digest32: bytes) -> Signature:
        if self.recovery_id_offset:
            good = self.inner.sign_ecdsa(ref, digest32)
            return Signature(good.r, good.s, good.recovery_id ^ self.recovery_id_offset)
        return self.inner.sign_ecdsa(ref, bytes(32))

    def sign_schnorr(
        self, ref: HdKeyRef, digest32: bytes, *, merkle_root: bytes | None = None
    ) -> bytes:
        return self.inner.sign_schnorr(ref, bytes(32), merkle_root=merkle_root)


class TestSignEvm:
    def tx(self, nonce: int = 0) -> Eip1559Transaction:
        return native_transfer(
            chain_id=31337,
            nonce=nonce,
            to=bytes.fromhex("70997970c51812dc3a010c7d01b50e0d17dc79c8"),
            value_wei=10**17,
            max_priority_fee_per_gas=10**9,
            max_fee_per_gas=2 * 10**9,
        )

    def test_raw_recovers_to_the_key_address_when_signed(self, wallet: Wallet) -> None:
        sender = evm_address_from_public_key(wallet.signer.public_key(wallet.hot))
        signed = sign_evm(wallet.signer, self.tx(), wallet.hot, sender=sender)
        raw = bytes.fromhex(signed.raw_hex[2:])
        assert Account.recover_transaction(raw) == sender
        assert signed.txid.startswith("0x")
        assert len(signed.txid) == 66

    def test_raw_recovers_to_the_hd_key_address_when_signed_by_a_sealed_seed(
        self, wallet: Wallet
    ) -> None:
        sealed = wallet.hd.sealed
        ref = HdKeyRef(sealed, "m/44'/60'/0'/0/0")
        sender = evm_address_from_public_key(wallet.signer.public_key(ref))
        signed = sign_evm(wallet.signer, self.tx(nonce=3), ref, sender=sender)
        assert Account.recover_transaction(bytes.fromhex(signed.raw_hex[2:])) == sender
        assert [name for name, _ in wallet.signer.calls] == ["sign_ecdsa"]

    def test_nothing_is_signed_when_sender_is_not_the_key_address(self, wallet: Wallet) -> None:
        with pytest.raises(ValidationError) as caught:
            sign_evm(
                wallet.signer,
                self.tx(),
                wallet.hot,
                sender="0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            )
        assert caught.value.details["field"] == "sender"
        assert wallet.signer.calls == []

    def test_wrong_recovery_id_is_refused_when_the_signer_is_faulty(self, wallet: Wallet) -> None:
        faulty = SignsWrongDigest(wallet.signer, recovery_id_offset=1)
        with pytest.raises(IntegrityError):
            sign_evm(faulty, self.tx(), wallet.hot)  # type: ignore[arg-type]
