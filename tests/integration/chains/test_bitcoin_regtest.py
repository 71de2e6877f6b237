"""Spends built and signed by our code, accepted by a real Bitcoin Knots node (regtest).

bitcoind's wallet only funds our addresses; every transaction under test is planned by
``dpgnode.domain.custody.btc_spend``, signed through the ``Signer`` port (in-memory and
SoftHSM2) by ``dpgnode.services.custody.tx_signing``, checked with ``testmempoolaccept``,
broadcast, mined, and its outputs looked up on chain.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from dpgnode.domain.custody.addresses import address_from_public_key, parse_address
from dpgnode.domain.custody.btc_spend import FeeRate, Payment, UnsignedSpend, Utxo, plan_spend
from dpgnode.domain.custody.btc_tx import SEQUENCE_RBF
from dpgnode.domain.custody.networks import AddressType, Network
from dpgnode.errors import InsufficientFundsError, ValidationError
from dpgnode.ports.signer import HdKeyRef, HotKeyRef, KeyRef, SealedSeed
from dpgnode.services.custody.tx_signing import SignedTx, sign_bitcoin
from tests.integration.chains.signing import BURN, CountingSigner
from tests.support.bitcoind import BitcoindNode, btc_to_sats

pytestmark = pytest.mark.integration

REGTEST = Network.REGTEST


def our_address(signer: CountingSigner, ref: KeyRef, address_type: AddressType) -> str:
    return address_from_public_key(signer.public_key(ref), address_type, REGTEST)


def fund(node: BitcoindNode, address: str, btc: str, key_id: str) -> Utxo:
    """Pay ``btc`` from the funder wallet to ``address``, mine it, return the UTXO."""
    txid = node.rpc("sendtoaddress", address, Decimal(btc), wallet="funder")
    node.mine(1, BURN)
    script = parse_address(address, REGTEST).script_pubkey
    tx = node.rpc("getrawtransaction", txid, True)
    (vout,) = [o for o in tx["vout"] if bytes.fromhex(o["scriptPubKey"]["hex"]) == script]
    return Utxo(txid, vout["n"], btc_to_sats(vout["value"]), script, key_id)


def accept(node: BitcoindNode, signed: SignedTx) -> dict[str, object]:
    (result,) = node.rpc("testmempoolaccept", [signed.raw_hex])
    assert result["allowed"], result.get("reject-reason")
    return result  # type: ignore[no-any-return]


def broadcast_and_mine(node: BitcoindNode, signed: SignedTx) -> None:
    assert node.rpc("sendrawtransaction", signed.raw_hex) == signed.txid
    node.mine(1, BURN)
    assert node.rpc("getrawtransaction", signed.txid, True)["confirmations"] == 1


def check_outputs_on_chain(node: BitcoindNode, spend: UnsignedSpend, txid: str) -> None:
    for index, out in enumerate(spend.tx.outputs):
        onchain = node.rpc("gettxout", txid, index)
        assert btc_to_sats(onchain["value"]) == out.value_sats
        assert bytes.fromhex(onchain["scriptPubKey"]["hex"]) == out.script_pubkey


def funder_address(node: BitcoindNode) -> str:
    address: str = node.rpc("getnewaddress", "", "bech32", wallet="funder")
    return address


class TestP2wpkhHotKey:
    def test_spend_is_accepted_mined_and_pays_exactly_when_signed_by_hot_key(
        self, bitcoind: BitcoindNode, signer: CountingSigner, hot_key: HotKeyRef
    ) -> None:
        ours = our_address(signer, hot_key, AddressType.P2WPKH)
        utxo = fund(bitcoind, ours, "1.0", "hot")
        destination = funder_address(bitcoind)
        fee_rate = FeeRate.from_sat_per_vb("2.5")
        spend = plan_spend(
            [utxo],
            [Payment.to_address(destination, REGTEST, 40_000_000)],
            change_script=utxo.script_pubkey,
            fee_rate=fee_rate,
        )
        signed = sign_bitcoin(signer, spend, {"hot": hot_key})
        assert signer.calls == ["ecdsa"]

        result = accept(bitcoind, signed)
        assert btc_to_sats(result["fees"]["base"]) == spend.fee_sats  # type: ignore[index]
        assert int(result["vsize"]) <= spend.max_vsize  # type: ignore[call-overload]
        assert spend.fee_sats * 1000 >= fee_rate.sat_per_kvb * int(result["vsize"])  # type: ignore[call-overload]

        assert bitcoind.rpc("sendrawtransaction", signed.raw_hex) == signed.txid
        entry = bitcoind.rpc("getmempoolentry", signed.txid)
        assert entry["bip125-replaceable"] is True
        decoded = bitcoind.rpc("decoderawtransaction", signed.raw_hex)
        assert decoded["version"] == 2
        assert {i["sequence"] for i in decoded["vin"]} == {SEQUENCE_RBF}

        bitcoind.mine(1, BURN)
        assert bitcoind.rpc("getrawtransaction", signed.txid, True)["confirmations"] == 1
        check_outputs_on_chain(bitcoind, spend, signed.txid)
        received = bitcoind.rpc("getreceivedbyaddress", destination, 1, wallet="funder")
        assert btc_to_sats(received) == 40_000_000

    def test_fee_bump_replaces_the_first_spend_when_rbf_is_signalled(
        self, bitcoind: BitcoindNode, signer: CountingSigner, hot_key: HotKeyRef
    ) -> None:
        utxo = fund(bitcoind, our_address(signer, hot_key, AddressType.P2WPKH), "0.5", "hot")
        payment = [Payment.to_address(funder_address(bitcoind), REGTEST, 10_000_000)]
        first, second = (
            sign_bitcoin(
                signer,
                plan_spend(
                    [utxo],
                    payment,
                    change_script=utxo.script_pubkey,
                    fee_rate=FeeRate.from_sat_per_vb(rate),
                ),
                {"hot": hot_key},
            )
            for rate in ("1.5", "6")
        )
        assert bitcoind.rpc("sendrawtransaction", first.raw_hex) == first.txid
        assert bitcoind.rpc("sendrawtransaction", second.raw_hex) == second.txid
        mempool = bitcoind.rpc("getrawmempool")
        assert second.txid in mempool
        assert first.txid not in mempool
        bitcoind.mine(1, BURN)


class TestP2trHdKey:
    def test_key_path_spend_is_accepted_when_signed_by_hd_key(
        self, bitcoind: BitcoindNode, signer: CountingSigner, seed: SealedSeed
    ) -> None:
        ref = HdKeyRef(seed, "m/86'/1'/0'/0/0")
        ours = our_address(signer, ref, AddressType.P2TR)
        assert ours.startswith("bcrt1p")
        utxo = fund(bitcoind, ours, "0.75", "tr0")
        change = parse_address(
            our_address(signer, HdKeyRef(seed, "m/86'/1'/0'/1/0"), AddressType.P2TR), REGTEST
        ).script_pubkey
        spend = plan_spend(
            [utxo],
            [Payment.to_address(funder_address(bitcoind), REGTEST, 25_000_000)],
            change_script=change,
            fee_rate=FeeRate.from_sat_per_vb(3),
        )
        signed = sign_bitcoin(signer, spend, {"tr0": ref})
        assert signer.calls == ["schnorr"]
        result = accept(bitcoind, signed)
        assert btc_to_sats(result["fees"]["base"]) == spend.fee_sats  # type: ignore[index]
        broadcast_and_mine(bitcoind, signed)
        check_outputs_on_chain(bitcoind, spend, signed.txid)

    def test_one_transaction_spends_p2wpkh_and_p2tr_inputs_when_mixed(
        self,
        bitcoind: BitcoindNode,
        signer: CountingSigner,
        seed: SealedSeed,
        hot_key: HotKeyRef,
    ) -> None:
        hd = HdKeyRef(seed, "m/86'/1'/0'/0/7")
        utxos = [
            fund(bitcoind, our_address(signer, hot_key, AddressType.P2WPKH), "0.3", "hot"),
            fund(bitcoind, our_address(signer, hd, AddressType.P2TR), "0.2", "hd"),
        ]
        spend = plan_spend(
            utxos,
            [Payment.to_address(funder_address(bitcoind), REGTEST, 45_000_000)],
            change_script=utxos[0].script_pubkey,
            fee_rate=FeeRate.from_sat_per_vb(2),
        )
        assert len(spend.spent) == 2
        signed = sign_bitcoin(signer, spend, {"hot": hot_key, "hd": hd})
        assert sorted(signer.calls) == ["ecdsa", "schnorr"]
        accept(bitcoind, signed)
        broadcast_and_mine(bitcoind, signed)
        check_outputs_on_chain(bitcoind, spend, signed.txid)


class TestRefusals:
    def test_nothing_is_signed_when_destination_is_of_another_network(
        self, bitcoind: BitcoindNode, signer: CountingSigner, hot_key: HotKeyRef
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            Payment.to_address("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", REGTEST, 10_000)
        assert caught.value.details["field"] == "destination"
        assert signer.calls == []

    def test_nothing_is_signed_when_amount_exceeds_the_funds(
        self, bitcoind: BitcoindNode, signer: CountingSigner, hot_key: HotKeyRef
    ) -> None:
        utxo = fund(bitcoind, our_address(signer, hot_key, AddressType.P2WPKH), "0.1", "hot")
        with pytest.raises(InsufficientFundsError):
            plan_spend(
                [utxo],
                [Payment.to_address(funder_address(bitcoind), REGTEST, 10_000_000)],
                change_script=utxo.script_pubkey,
                fee_rate=FeeRate(1000),
            )
        assert signer.calls == []

    def test_nothing_is_signed_when_the_key_does_not_own_the_input(
        self, bitcoind: BitcoindNode, signer: CountingSigner, hot_key: HotKeyRef
    ) -> None:
        utxo = fund(bitcoind, our_address(signer, hot_key, AddressType.P2WPKH), "0.1", "hot")
        stranger = HotKeyRef(hot_key.label + ":other")
        signer.generate_hot_key(stranger.label)
        spend = plan_spend(
            [utxo],
            [Payment.to_address(funder_address(bitcoind), REGTEST, 1_000_000)],
            change_script=utxo.script_pubkey,
            fee_rate=FeeRate(1000),
        )
        with pytest.raises(ValidationError):
            sign_bitcoin(signer, spend, {"hot": stranger})
        assert signer.calls == []
