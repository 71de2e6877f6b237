"""Bitcoin transactions: BIP341 / BIP143 vectors, python-bitcoinlib cross-checks, spend planning.

The BIP341 data is ``keyPathSpending[0]`` of bitcoin/bips ``bip-0341/wallet-test-vectors.json``
(the unsigned transaction, the nine outputs it spends, and the published sighash of every
key-path input); the BIP143 data is the "Native P2WPKH" example of BIP143.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from bitcoin.core import COutPoint, CTransaction, CTxIn, CTxInWitness, CTxOut, CTxWitness, lx  # type: ignore[import-untyped]
from bitcoin.core.script import SIGHASH_ALL, SIGVERSION_WITNESS_V0, CScript, CScriptWitness  # type: ignore[import-untyped]
from bitcoin.core.script import SignatureHash as BitcoinlibSighash
from coincurve import PrivateKey, PublicKey, PublicKeyXOnly
from hypothesis import given, settings
from hypothesis import strategies as st

from dpgnode.domain.custody.addresses import script_pubkey_from_public_key
from dpgnode.domain.custody.btc_spend import (
    FeeRate,
    Payment,
    SignedBitcoinTx,
    UnsignedSpend,
    Utxo,
    build_spend,
    estimate_vsize,
    plan_spend,
    select_coins,
    witness_for,
)
from dpgnode.domain.custody.btc_tx import (
    SEQUENCE_RBF,
    InputKind,
    Transaction,
    TxIn,
    TxOut,
    dust_threshold,
    is_standard_output,
    p2wpkh_script_code,
    segwit_v0_sighash,
    taproot_key_path_sighash,
)
from dpgnode.domain.custody.networks import AddressType, Network
from dpgnode.errors import InsufficientFundsError, ValidationError
from tests.support.memory_signer import taproot_tweaked_secret

# --- BIP341 wallet test vectors, keyPathSpending[0] -------------------------------------------

BIP341_UNSIGNED_TX = (
    "02000000097de20cbff686da83a54981d2b9bab3586f4ca7e48f57f5b55963115f3b334e9c"
    "010000000000000000d7b7cab57b1393ace2d064f4d4a2cb8af6def61273e127517d44759b"
    "6dafdd990000000000fffffffff8e1f583384333689228c5d28eac13366be082dc57441760"
    "d957275419a418420000000000fffffffff0689180aa63b30cb162a73c6d2a38b7eeda2a83"
    "ece74310fda0843ad604853b0100000000feffffffaa5202bdf6d8ccd2ee0f0202afbbb746"
    "1d9264a25e5bfd3c5a52ee1239e0ba6c0000000000feffffff956149bdc66faa968eb2be2d"
    "2faa29718acbfe3941215893a2a3446d32acd050000000000000000000e664b9773b88c09c"
    "32cb70a2a3e4da0ced63b7ba3b22f848531bbb1d5d5f4c94010000000000000000e9aa6b8e"
    "6c9de67619e6a3924ae25696bb7b694bb677a632a74ef7eadfd4eabf0000000000ffffffffa"
    "778eb6a263dc090464cd125c466b5a99667720b1c110468831d058aa1b82af10100000000f"
    "fffffff0200ca9a3b000000001976a91406afd46bcdfd22ef94ac122aa11f241244a37ecc8"
    "8ac807840cb0000000020ac9a87f5594be208f8532db38cff670c450ed2fea8fcdefcc9a66"
    "3f78bab962b0065cd1d"
)
BIP341_SPENT = [
    ("512053a1f6e454df1aa2776a2814a721372d6258050de330b3c6d10ee8f4e0dda343", 420_000_000),
    ("5120147c9c57132f6e7ecddba9800bb0c4449251c92a1e60371ee77557b6620f3ea3", 462_000_000),
    ("76a914751e76e8199196d454941c45d1b3a323f1433bd688ac", 294_000_000),
    ("5120e4d810fd50586274face62b8a807eb9719cef49c04177cc6b76a9a4251d5450e", 504_000_000),
    ("512091b64d5324723a985170e4dc5a0f84c041804f2cd12660fa5dec09fc21783605", 630_000_000),
    ("00147dd65592d0ab2fe0d0257d571abf032cd9db93dc", 378_000_000),
    ("512075169f4001aa68f15bbed28b218df1d0a62cbbcf1188c6665110c293c907b831", 672_000_000),
    ("5120712447206d7a5238acc7ff53fbe94a3b64539ad291c7cdbc490b7577e4b17df5", 546_000_000),
    ("512077e30a5522dd9f894c3f8b8bd4c4b2cf82ca7da8a3ea6a239655c39c050ab220", 588_000_000),
]
BIP341_SIGHASHES = [  # (txinIndex, hashType, sigHash)
    (0, 0x03, "2514a6272f85cfa0f45eb907fcb0d121b808ed37c6ea160a5a9046ed5526d555"),
    (1, 0x83, "325a644af47e8a5a2591cda0ab0723978537318f10e6a63d4eed783b96a71a4d"),
    (3, 0x01, "bf013ea93474aa67815b1b6cc441d23b64fa310911d991e713cd34c7f5d46669"),
    (4, 0x00, "4f900a0bae3f1446fd48490c2958b5a023228f01661cda3496a11da502a7f7ef"),
    (6, 0x02, "15f25c298eb5cdc7eb1d638dd2d45c97c4c59dcaec6679cfc16ad84f30876b85"),
    (7, 0x82, "cd292de50313804dabe4685e83f923d2969577191a3e1d2882220dca88cbeb10"),
    (8, 0x81, "cccb739eca6c13a8a89e6e5cd317ffe55669bbda23f2fd37b0f18755e008edd2"),
]
BIP341_SIGNING = [  # (txinIndex, internalPrivkey, merkleRoot, tweakedPrivkey, witness[0])
    (
        0,
        "6b973d88838f27366ed61c9ad6367663045cb456e28335c109e30717ae0c6baa",
        None,
        "2405b971772ad26915c8dcdf10f238753a9b837e5f8e6a86fd7c0cce5b7296d9",
        "ed7c1647cb97379e76892be0cacff57ec4a7102aa24296ca39af7541246d8ff1"
        "4d38958d4cc1e2e478e4d4a764bbfd835b16d4e314b72937b29833060b87276c03",
    ),
    (
        4,
        "f36bb07a11e469ce941d16b63b11b9b9120a84d9d87cff2c84a8d4affb438f4e",
        "ccbd66c6f7e8fdab47b3a486f59d28262be857f30d4773f2d5ea47f7761ce0e2",
        "a8e7aa924f0d58854185a490e6c41f6efb7b675c0f3331b7f14b549400b4d501",
        "b4010dd48a617db09926f729e79c33ae0b4e94b79f04a1ae93ede6315eb3669d"
        "e185a17d2b0ac9ee09fd4c64b678a0b61a0a86fa888a273c8511be83bfd6810f",
    ),
]

# --- BIP143 "Native P2WPKH" example ---------------------------------------------------------

BIP143_UNSIGNED_TX = (
    "0100000002fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f0000000000eef"
    "fffffef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff"
    "02202cb206000000001976a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac9093510d00000000"
    "1976a9143bde42dbee7e4dbe6a21b2d50ce2f0167faa815988ac11000000"
)
BIP143_KEY = "619c335025c7f4012e556c2a58b2506e30b8511b53ade95ea316fd8c3286feb9"
BIP143_SPK = "00141d0f172a0ecb48aee1be1f2687d2963ae33f71a1"
BIP143_SIGHASH = "c37af31116d1b27caf68aae9e3ac82f1477929014d5b917657d0eb49478cb670"
BIP143_SIGNATURE = (
    "304402203609e17b84f6a7d30c80bfa610b5b4542f32a8a0d5447a12fb1366d7f01cc44a"
    "0220573a954c4518331561406f90300e8f3358f51928d43c212a8caed02de67eebee"
)


def from_bitcoinlib(raw_hex: str) -> Transaction:
    """Parse with python-bitcoinlib (the reference) into our model."""
    ctx = CTransaction.deserialize(bytes.fromhex(raw_hex))
    return Transaction(
        version=ctx.nVersion,
        inputs=tuple(TxIn(i.prevout.hash[::-1].hex(), i.prevout.n, i.nSequence) for i in ctx.vin),
        outputs=tuple(TxOut(bytes(o.scriptPubKey), o.nValue) for o in ctx.vout),
        locktime=ctx.nLockTime,
    )


def to_bitcoinlib(tx: Transaction, witnesses: list[list[bytes]] | None = None) -> CTransaction:
    vin = [CTxIn(COutPoint(lx(i.txid), i.vout), nSequence=i.sequence) for i in tx.inputs]
    vout = [CTxOut(o.value_sats, CScript(o.script_pubkey)) for o in tx.outputs]
    if not witnesses:
        return CTransaction(vin, vout, tx.locktime, tx.version)
    wit = CTxWitness([CTxInWitness(CScriptWitness(w)) for w in witnesses])
    return CTransaction(vin, vout, tx.locktime, tx.version, wit)


class TestBip341Vectors:
    def test_vector_transaction_round_trips_when_serialized(self) -> None:
        assert from_bitcoinlib(BIP341_UNSIGNED_TX).serialize().hex() == BIP341_UNSIGNED_TX

    @pytest.mark.parametrize(("index", "hash_type", "expected"), BIP341_SIGHASHES)
    def test_key_path_sighash_matches_vector_when_hash_type_varies(
        self, index: int, hash_type: int, expected: str
    ) -> None:
        tx = from_bitcoinlib(BIP341_UNSIGNED_TX)
        spent = [TxOut(bytes.fromhex(spk), value) for spk, value in BIP341_SPENT]
        assert taproot_key_path_sighash(tx, spent, index, hash_type).hex() == expected

    @pytest.mark.parametrize(
        ("index", "secret", "merkle_root", "tweaked", "witness"), BIP341_SIGNING
    )
    def test_schnorr_witness_matches_vector_when_signed_by_tweaked_key(
        self, index: int, secret: str, merkle_root: str | None, tweaked: str, witness: str
    ) -> None:
        tx = from_bitcoinlib(BIP341_UNSIGNED_TX)
        spent = [TxOut(bytes.fromhex(spk), value) for spk, value in BIP341_SPENT]
        hash_type = next(h for i, h, _ in BIP341_SIGHASHES if i == index)
        digest = taproot_key_path_sighash(tx, spent, index, hash_type)
        root = bytes.fromhex(merkle_root) if merkle_root else None
        key = taproot_tweaked_secret(bytes.fromhex(secret), root)
        assert key.secret.hex() == tweaked
        signature = key.sign_schnorr(digest, bytes(32))  # the vectors use zero aux randomness
        suffix = bytes([hash_type]) if hash_type else b""
        assert (signature + suffix).hex() == witness
        assert witness_for(InputKind.P2TR, signature) == [signature]
        assert PublicKeyXOnly(bytes.fromhex(BIP341_SPENT[index][0])[2:]).verify(signature, digest)

    def test_refuses_when_spent_outputs_do_not_match_inputs(self) -> None:
        tx = from_bitcoinlib(BIP341_UNSIGNED_TX)
        with pytest.raises(ValidationError):
            taproot_key_path_sighash(tx, [], 0)
        with pytest.raises(ValidationError):
            taproot_key_path_sighash(tx, [TxOut(b"\x51", 1)] * 9, 0, hash_type=0x04)


class TestBip143Vector:
    def test_p2wpkh_sighash_and_signature_match_bip143_when_signed(self) -> None:
        tx = from_bitcoinlib(BIP143_UNSIGNED_TX)
        code = p2wpkh_script_code(bytes.fromhex(BIP143_SPK)[2:])
        digest = segwit_v0_sighash(tx, 1, code, 600_000_000)
        assert digest.hex() == BIP143_SIGHASH
        # libsecp256k1 signs with RFC 6979 nonces, as Bitcoin Core did for the BIP's example.
        assert PrivateKey(bytes.fromhex(BIP143_KEY)).sign(digest, hasher=None).hex() == (
            BIP143_SIGNATURE
        )


_txids = st.binary(min_size=32, max_size=32).map(bytes.hex)
_scripts = st.one_of(
    st.binary(min_size=20, max_size=20).map(lambda h: b"\x00\x14" + h),
    st.binary(min_size=32, max_size=32).map(lambda h: b"\x51\x20" + h),
    st.binary(min_size=20, max_size=20).map(lambda h: b"\x76\xa9\x14" + h + b"\x88\xac"),
    st.binary(min_size=0, max_size=300),
)
_transactions = st.builds(
    Transaction,
    version=st.sampled_from([1, 2]),
    inputs=st.lists(
        st.builds(
            TxIn,
            txid=_txids,
            vout=st.integers(0, 2**32 - 1),
            sequence=st.integers(0, 2**32 - 1),
        ),
        min_size=1,
        max_size=5,
        unique_by=lambda i: (i.txid, i.vout),
    ).map(tuple),
    outputs=st.lists(
        st.builds(TxOut, script_pubkey=_scripts, value_sats=st.integers(0, 10**14)),
        min_size=1,
        max_size=5,
    ).map(tuple),
    # python-bitcoinlib 0.12.2 packs nLockTime as a signed int in its BIP143 preimage, so the
    # cross-check stays below 2**31 (block heights and timestamps until 2038 live there).
    locktime=st.integers(0, 2**31 - 1),
)


class TestAgainstBitcoinlib:
    @settings(max_examples=150, deadline=None)
    @given(tx=_transactions, data=st.data())
    def test_serialization_txid_and_bip143_agree_when_random(
        self, tx: Transaction, data: st.DataObject
    ) -> None:
        reference = to_bitcoinlib(tx)
        assert tx.serialize() == reference.serialize()
        assert tx.txid() == reference.GetTxid()[::-1].hex()
        index = data.draw(st.integers(0, len(tx.inputs) - 1))
        key_hash = data.draw(st.binary(min_size=20, max_size=20))
        value = data.draw(st.integers(1, 10**14))
        ours = segwit_v0_sighash(tx, index, p2wpkh_script_code(key_hash), value)
        script = CScript(b"\x76\xa9\x14" + key_hash + b"\x88\xac")
        theirs = BitcoinlibSighash(
            script, reference, index, SIGHASH_ALL, value, SIGVERSION_WITNESS_V0
        )
        assert ours == theirs

    @settings(max_examples=50, deadline=None)
    @given(tx=_transactions, data=st.data())
    def test_witness_serialization_agrees_when_stacks_are_random(
        self, tx: Transaction, data: st.DataObject
    ) -> None:
        stacks = [
            data.draw(st.lists(st.binary(max_size=80), min_size=1, max_size=3)) for _ in tx.inputs
        ]
        assert tx.serialize(stacks) == to_bitcoinlib(tx, stacks).serialize()


class TestScriptsAndFees:
    @pytest.mark.parametrize(
        ("script", "dust"),
        [
            (b"\x00\x14" + bytes(20), 294),
            (b"\x51\x20" + bytes(32), 330),
            (b"\x00\x20" + bytes(32), 330),
            (b"\x76\xa9\x14" + bytes(20) + b"\x88\xac", 546),
            (b"\xa9\x14" + bytes(20) + b"\x87", 540),
        ],
    )
    def test_dust_threshold_matches_bitcoin_core_when_script_type_varies(
        self, script: bytes, dust: int
    ) -> None:
        assert is_standard_output(script)
        assert dust_threshold(script) == dust

    @pytest.mark.parametrize(
        "script", [b"", b"\x6a\x04abcd", b"\x00\x15" + bytes(21), b"\x51" * 3, b"\xac"]
    )
    def test_non_standard_destination_is_refused_when_classified(self, script: bytes) -> None:
        assert not is_standard_output(script)

    @pytest.mark.parametrize(
        ("text", "kvb"), [("1", 1000), ("1.5", 1500), ("0.001", 1), (25, 25000)]
    )
    def test_fee_rate_parses_exactly_when_decimal(self, text: str | int, kvb: int) -> None:
        assert FeeRate.from_sat_per_vb(text).sat_per_kvb == kvb

    @pytest.mark.parametrize(
        "text",
        ["0", "-1", "0.0001", "abc", "NaN", "sNaN", "-sNaN", "Infinity", "10001", "1e999999"],
    )
    def test_fee_rate_is_refused_when_out_of_range_or_inexact(self, text: str) -> None:
        with pytest.raises(ValidationError):
            FeeRate.from_sat_per_vb(text)

    def test_highest_fee_rate_is_accepted_when_at_the_limit(self) -> None:
        assert FeeRate.from_sat_per_vb("10000").sat_per_kvb == 10_000_000

    def test_fee_rounds_up_when_fractional(self) -> None:
        assert FeeRate(1500).fee(141) == 212  # 211.5 -> 212: never below the asked rate

    def test_vsize_estimate_matches_known_sizes_when_one_input_two_outputs(self) -> None:
        wpkh, tr = b"\x00\x14" + bytes(20), b"\x51\x20" + bytes(32)
        # 1-in/2-out P2WPKH is 140.5 vB with a 71-byte signature; we assume 72 (+0.25 vB).
        assert estimate_vsize([InputKind.P2WPKH], [wpkh, wpkh]) == 141
        assert estimate_vsize([InputKind.P2TR], [tr, tr]) == 154  # 153.5 -> 154


# --- planning and signing spends ----------------------------------------------------------------

KEYS = {f"k{i}": PrivateKey(bytes([i]) * 32) for i in range(1, 6)}
CHANGE = script_pubkey_from_public_key(KEYS["k5"].public_key.format(), AddressType.P2WPKH)
DEST = b"\x00\x14" + bytes(range(20))


def utxo(key_id: str, value: int, vout: int = 0, kind: InputKind = InputKind.P2WPKH) -> Utxo:
    address_type = AddressType.P2WPKH if kind is InputKind.P2WPKH else AddressType.P2TR
    script = script_pubkey_from_public_key(KEYS[key_id].public_key.format(), address_type)
    txid = bytes([vout % 256, *key_id.encode()]).hex().ljust(64, "0")
    return Utxo(txid, vout, value, script, key_id)


def sign_with_test_keys(spend: UnsignedSpend) -> SignedBitcoinTx:
    witnesses = []
    for request in spend.signing_requests():
        key = KEYS[request.key_id]
        if request.kind is InputKind.P2WPKH:
            der = key.sign(request.digest, hasher=None)
            assert PublicKey(key.public_key.format()).verify(der, request.digest, hasher=None)
            witnesses.append(witness_for(request.kind, der, key.public_key.format()))
        else:
            signature = taproot_tweaked_secret(key.secret).sign_schnorr(request.digest)
            assert PublicKeyXOnly(request.script_pubkey[2:]).verify(signature, request.digest)
            witnesses.append(witness_for(request.kind, signature))
    return spend.finalize(witnesses)


class TestPlanSpend:
    def test_selection_is_largest_first_when_several_candidates(self) -> None:
        candidates = [utxo("k1", 10_000), utxo("k2", 90_000), utxo("k3", 50_000)]
        chosen = select_coins(
            candidates, [Payment(DEST, 100_000)], change_script=CHANGE, fee_rate=FeeRate(2000)
        )
        assert [u.value_sats for u in chosen] == [90_000, 50_000]

    def test_spend_signals_rbf_version_2_and_change_last_when_planned(self) -> None:
        spend = plan_spend(
            [utxo("k1", 100_000)],
            [Payment(DEST, 40_000)],
            change_script=CHANGE,
            fee_rate=FeeRate(2000),
        )
        assert spend.tx.version == 2
        assert all(i.sequence == SEQUENCE_RBF for i in spend.tx.inputs)
        assert spend.change_index == 1
        assert spend.tx.outputs[1].script_pubkey == CHANGE
        assert spend.fee_sats == FeeRate(2000).fee(spend.max_vsize)
        assert 40_000 + spend.tx.outputs[1].value_sats + spend.fee_sats == 100_000

    def test_change_is_left_to_the_fee_when_it_would_be_dust(self) -> None:
        fee_rate = FeeRate(1000)
        no_change_fee = fee_rate.fee(estimate_vsize([InputKind.P2WPKH], [DEST]))
        spend = plan_spend(
            [utxo("k1", 50_000 + no_change_fee + 200)],
            [Payment(DEST, 50_000)],
            change_script=CHANGE,
            fee_rate=fee_rate,
        )
        assert spend.change_index is None
        assert len(spend.tx.outputs) == 1
        assert spend.fee_sats == no_change_fee + 200

    def test_spend_without_change_is_planned_when_funds_cannot_afford_a_change_output(
        self,
    ) -> None:
        fee_rate = FeeRate(1000)
        no_change_fee = fee_rate.fee(estimate_vsize([InputKind.P2WPKH], [DEST]))
        with_change_fee = fee_rate.fee(estimate_vsize([InputKind.P2WPKH], [DEST, CHANGE]))
        value = 50_000 + no_change_fee + (with_change_fee - no_change_fee) // 2
        spend = plan_spend(
            [utxo("k1", value)], [Payment(DEST, 50_000)], change_script=CHANGE, fee_rate=fee_rate
        )
        assert spend.change_index is None
        assert spend.fee_sats == value - 50_000
        assert spend.fee_sats >= fee_rate.fee(spend.max_vsize)

    def test_insufficient_funds_reports_the_amount_needed_without_change(self) -> None:
        fee_rate = FeeRate(1000)
        needed = 50_000 + fee_rate.fee(estimate_vsize([InputKind.P2WPKH], [DEST]))
        with pytest.raises(InsufficientFundsError) as caught:
            plan_spend(
                [utxo("k1", needed - 1)],
                [Payment(DEST, 50_000)],
                change_script=CHANGE,
                fee_rate=fee_rate,
            )
        assert caught.value.details == {"required_sats": needed, "available_sats": needed - 1}

    def test_insufficient_funds_is_refused_when_fee_is_not_covered(self) -> None:
        with pytest.raises(InsufficientFundsError) as caught:
            plan_spend(
                [utxo("k1", 50_000)],
                [Payment(DEST, 49_990)],
                change_script=CHANGE,
                fee_rate=FeeRate(1000),
            )
        assert caught.value.details["available_sats"] == 50_000

    def test_dust_payment_is_refused_when_planned(self) -> None:
        with pytest.raises(ValidationError) as caught:
            plan_spend(
                [utxo("k1", 50_000)],
                [Payment(DEST, 293)],
                change_script=CHANGE,
                fee_rate=FeeRate(1000),
            )
        assert caught.value.details["field"] == "outputs[0].amount"

    def test_non_standard_destination_is_refused_when_planned(self) -> None:
        with pytest.raises(ValidationError) as caught:
            plan_spend(
                [utxo("k1", 50_000)],
                [Payment(b"\xac", 10_000)],
                change_script=CHANGE,
                fee_rate=FeeRate(1000),
            )
        assert caught.value.details["field"] == "outputs[0].address"

    def test_address_of_another_network_is_refused_when_paying(self) -> None:
        mainnet = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
        assert Payment.to_address(mainnet, Network.MAINNET, 1000).script_pubkey[:2] == b"\x00\x14"
        with pytest.raises(ValidationError):
            Payment.to_address(mainnet, Network.REGTEST, 1000)

    def test_same_outpoint_twice_is_refused_when_built(self) -> None:
        one = utxo("k1", 50_000)
        with pytest.raises(ValidationError):
            build_spend(
                [one, replace(one, key_id="k2")],
                [Payment(DEST, 10_000)],
                change_script=CHANGE,
                fee_rate=FeeRate(1000),
            )

    def test_only_p2wpkh_and_p2tr_outputs_are_spendable_when_listed(self) -> None:
        with pytest.raises(ValidationError):
            Utxo("00" * 32, 0, 1000, b"\x76\xa9\x14" + bytes(20) + b"\x88\xac", "k1")

    def test_signed_size_stays_within_estimate_when_inputs_are_mixed(self) -> None:
        inputs = [utxo("k1", 30_000), utxo("k2", 20_000, kind=InputKind.P2TR), utxo("k3", 9_000)]
        fee_rate = FeeRate(3500)
        spend = plan_spend(inputs, [Payment(DEST, 45_000)], change_script=CHANGE, fee_rate=fee_rate)
        signed = sign_with_test_keys(spend)
        assert signed.vsize <= spend.max_vsize
        assert signed.fee_sats * 1000 >= fee_rate.sat_per_kvb * signed.vsize
        reference = CTransaction.deserialize(signed.raw)
        assert reference.GetTxid()[::-1].hex() == signed.txid
        assert reference.serialize() == signed.raw
        assert reference.has_witness()

    @settings(max_examples=200, deadline=None)
    @given(
        values=st.lists(st.integers(1, 5 * 10**8), min_size=1, max_size=12),
        pays=st.lists(st.integers(294, 10**9), min_size=1, max_size=3),
        rate=st.integers(1000, 200_000),
        taproot=st.lists(st.booleans(), min_size=12, max_size=12),
    )
    def test_value_is_conserved_and_rate_met_when_plans_are_random(
        self, values: list[int], pays: list[int], rate: int, taproot: list[bool]
    ) -> None:
        kinds = [InputKind.P2TR if t else InputKind.P2WPKH for t in taproot]
        candidates = [utxo("k1", v, vout=i, kind=kinds[i]) for i, v in enumerate(values)]
        payments = [Payment(DEST, p) for p in pays]
        fee_rate = FeeRate(rate)
        try:
            spend = plan_spend(candidates, payments, change_script=CHANGE, fee_rate=fee_rate)
        except InsufficientFundsError:
            # Refused only when even every candidate cannot pay a transaction without change.
            needed = sum(pays) + fee_rate.fee(
                estimate_vsize(kinds[: len(values)], [DEST] * len(pays))
            )
            assert sum(values) < needed
            return
        total_in = sum(u.value_sats for u in spend.spent)
        total_out = sum(o.value_sats for o in spend.tx.outputs)
        assert total_in - total_out == spend.fee_sats
        assert spend.fee_sats >= fee_rate.fee(spend.max_vsize)
        change_cost = fee_rate.fee(spend.max_vsize + 31) - fee_rate.fee(spend.max_vsize)
        assert spend.fee_sats < fee_rate.fee(spend.max_vsize) + dust_threshold(CHANGE) + change_cost
        assert [o.value_sats for o in spend.tx.outputs[: len(pays)]] == pays
