"""The signer's pure parts: signature encodings, low-S and recovery ids, tweaks, wiping.

No HSM needed here; these live beside the SoftHSM2 tests because they are the same code path.
"""

from __future__ import annotations

import hashlib

import pytest
from coincurve import PrivateKey, PublicKey, PublicKeyXOnly
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given
from hypothesis import strategies as st
from mnemonic import Mnemonic

from dpgnode.adapters.hsm import hd
from dpgnode.adapters.hsm.secp256k1 import (
    compressed_public_key,
    finish_signature,
    taproot_tweaked_key,
)
from dpgnode.adapters.hsm.wipe import wipe
from dpgnode.domain.custody.bip32 import master_from_seed, parse_path
from dpgnode.domain.custody.btc_tx import tagged_hash
from dpgnode.errors import IntegrityError, ValidationError
from dpgnode.ports.signer import SECP256K1_HALF_N, SECP256K1_N, SealedSeed, Signature

SEED = Mnemonic("english").to_seed(" ".join(["abandon"] * 11 + ["about"]), passphrase="")
scalars = st.integers(min_value=1, max_value=SECP256K1_N - 1)
low_s = st.integers(min_value=1, max_value=SECP256K1_HALF_N)


class TestSignatureValue:
    @given(r=scalars, s=low_s, v=st.integers(0, 3))
    def test_der_matches_cryptography_when_encoded(self, r: int, s: int, v: int) -> None:
        assert Signature(r, s, v).to_der() == encode_dss_signature(r, s)

    @given(r=scalars, s=low_s)
    def test_rs64_is_two_big_endian_words(self, r: int, s: int) -> None:
        raw = Signature(r, s, 0).to_rs64()
        assert len(raw) == 64
        assert int.from_bytes(raw[:32], "big") == r
        assert int.from_bytes(raw[32:], "big") == s

    @pytest.mark.parametrize(
        ("r", "s", "v"),
        [(0, 1, 0), (SECP256K1_N, 1, 0), (1, 0, 0), (1, SECP256K1_HALF_N + 1, 0), (1, 1, 4)],
        ids=["r-zero", "r-n", "s-zero", "high-s", "recovery-4"],
    )
    def test_out_of_range_values_are_refused(self, r: int, s: int, v: int) -> None:
        with pytest.raises(ValidationError):
            Signature(r, s, v)


class TestFinishSignature:
    @given(secret=scalars, digest=st.binary(min_size=32, max_size=32))
    def test_high_s_is_normalised_and_recovers_when_finished(
        self, secret: int, digest: bytes
    ) -> None:
        key = PrivateKey.from_int(secret)
        public = key.public_key.format(compressed=True)
        compact = key.sign_recoverable(digest, hasher=None)[:64]
        r = int.from_bytes(compact[:32], "big")
        s = int.from_bytes(compact[32:], "big")
        # An HSM may hand back either twin; both must finish to the same low-S signature.
        for raw_s in (s, SECP256K1_N - s):
            raw = r.to_bytes(32, "big") + raw_s.to_bytes(32, "big")
            finished = finish_signature(raw, digest, public)
            assert finished.r == r
            assert finished.s == min(s, SECP256K1_N - s)
            recovered = PublicKey.from_signature_and_message(
                finished.to_rs64() + bytes([finished.recovery_id]), digest, hasher=None
            )
            assert recovered.format(compressed=True) == public

    def test_signature_by_another_key_is_an_integrity_error(self) -> None:
        digest = hashlib.sha256(b"m").digest()
        raw = PrivateKey.from_int(5).sign_recoverable(digest, hasher=None)[:64]
        other = PrivateKey.from_int(6).public_key.format(compressed=True)
        with pytest.raises(IntegrityError, match="does not verify"):
            finish_signature(raw, digest, other)

    @pytest.mark.parametrize("raw", [b"", bytes(63), bytes(64), b"\xff" * 64])
    def test_malformed_raw_signature_is_an_integrity_error(self, raw: bytes) -> None:
        public = PrivateKey.from_int(5).public_key.format(compressed=True)
        with pytest.raises(IntegrityError):
            finish_signature(raw, bytes(32), public)


class TestPoints:
    def test_ec_point_is_accepted_with_and_without_der_wrapping(self) -> None:
        public = PrivateKey.from_int(7).public_key
        raw = public.format(compressed=False)
        assert compressed_public_key(raw) == public.format(compressed=True)
        assert compressed_public_key(b"\x04\x41" + raw) == public.format(compressed=True)

    @pytest.mark.parametrize("point", [b"", b"\x04\x40" + bytes(65), b"\x04" + bytes(64)])
    def test_malformed_ec_point_is_an_integrity_error(self, point: bytes) -> None:
        with pytest.raises(IntegrityError):
            compressed_public_key(point)


class TestTaprootTweak:
    def test_tweaked_key_matches_bip86_output_key_when_no_script_tree(self) -> None:
        node = master_from_seed(SEED).derive_path("m/86'/0'/0'/0/0")
        tweaked = taproot_tweaked_key(PrivateKey(node.secret), None)
        assert (
            tweaked.public_key.format(compressed=True)[1:].hex()
            == "a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c"
        )

    @given(secret=scalars, root=st.none() | st.binary(min_size=32, max_size=32))
    def test_tweaked_key_equals_public_tweak_of_internal_x(
        self, secret: int, root: bytes | None
    ) -> None:
        internal = PrivateKey.from_int(secret)
        x_only = internal.public_key.format(compressed=True)[1:]
        expected = PublicKeyXOnly(x_only)
        expected.tweak_add(tagged_hash("TapTweak", x_only + (root or b"")))
        tweaked = taproot_tweaked_key(internal, root)
        assert tweaked.public_key.format(compressed=True)[1:] == expected.format()


class TestWipe:
    def test_bytes_are_zeroed_in_place(self) -> None:
        secret = bytes(bytearray(range(1, 33)))  # a fresh object, not a shared constant
        wipe(secret)
        assert secret == bytes(32)

    def test_bytearray_is_zeroed_in_place(self) -> None:
        buffer = bytearray(b"seed material!!")
        wipe(buffer, None)
        assert buffer == bytearray(len(buffer))

    def test_shared_tiny_bytes_are_left_alone(self) -> None:
        wipe(b"", b"a")
        assert bytes([97]) == b"a"

    def test_derivation_result_survives_ancestor_wiping(self) -> None:
        path = "m/84'/1'/0'/0/5"
        expected = master_from_seed(SEED).derive_path(path)
        seed_copy = bytes(bytearray(SEED))
        node = hd.derive(seed_copy, parse_path(path), expected.network)
        assert node.secret == expected.secret
        assert node.chain_code == expected.chain_code

    def test_child_key_is_wiped_after_use(self) -> None:
        seen: list[PrivateKey] = []

        def use(key: PrivateKey) -> bytes:
            seen.append(key)
            return bytes(key.public_key.format(compressed=True))

        public = hd.with_child_key(bytes(bytearray(SEED)), parse_path("m/0/1"), use)
        assert public == master_from_seed(SEED).derive_path("m/0/1").public_key()
        assert seen[0].secret == bytes(32)


class TestSealedSeedText:
    def test_round_trips_when_serialised(self) -> None:
        sealed = SealedSeed("dpg-kek-1", bytes(12), bytes(range(80)), b"wallet:1")
        assert SealedSeed.from_json(sealed.to_json()) == sealed

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "[]",
            "{}",
            '{"v":2,"kek":"k","nonce":"","ct":"","aad":""}',
            '{"v":1,"kek":"k","nonce":"zz","ct":"","aad":""}',
        ],
    )
    def test_malformed_text_is_refused(self, text: str) -> None:
        with pytest.raises(ValidationError):
            SealedSeed.from_json(text)
