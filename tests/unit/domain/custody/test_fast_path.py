"""Address fast path on raw libsecp256k1 points: same keys as the coincurve reference path."""

from __future__ import annotations

import hashlib

import pytest
from coincurve import PrivateKey, PublicKey
from coincurve._libsecp256k1 import ffi, lib  # type: ignore[import-not-found]
from coincurve.context import GLOBAL_CONTEXT

from dpgnode.domain.custody.addresses import TaprootTweak, taproot_output_key
from dpgnode.domain.custody.bip32 import CURVE_ORDER, ChildPoints, PointTweaker, master_from_seed

NODE = master_from_seed(bytes(range(32))).derive_path("m/86'/0'/0'/0").public()
TAG = hashlib.sha256(b"TapTweak").digest()


def reference_taproot(public_key: bytes) -> bytes:
    """BIP341 written out with coincurve objects: lift_x(x(P)) + hash_TapTweak(x(P)) * G."""
    x = public_key[1:]
    tweak = hashlib.sha256(TAG + TAG + x).digest()
    output: bytes = PublicKey(b"\x02" + x).add(tweak).format()
    return output[1:]


class TestChildPoints:
    def test_points_equal_ckdpub_children_when_compared_over_64_indices(self) -> None:
        points = ChildPoints(NODE)
        for index in range(64):
            expected = NODE.child(index).public_key
            point = points.point(index)
            assert points.compressed(point) == expected
            assert points.uncompressed(point) == PublicKey(expected).format(compressed=False)


class TestTaprootTweak:
    def test_output_keys_match_reference_for_both_parities(self) -> None:
        tweak, points = TaprootTweak(), ChildPoints(NODE)
        parities = set()
        for index in range(64):
            public_key = NODE.child(index).public_key
            parities.add(public_key[0])
            assert tweak(points.point(index)) == reference_taproot(public_key)
            assert taproot_output_key(public_key) == reference_taproot(public_key)
        assert parities == {2, 3}


class TestPointTweaker:
    BASE = PrivateKey(b"\x00" * 31 + b"\x05").public_key

    def add(self, base: PublicKey, tweak: int) -> bytes | None:
        out = PointTweaker().add(base.public_key, tweak.to_bytes(32, "big"))
        return None if out is None else _compressed(out)

    @pytest.mark.parametrize("tweak", [1, 2, 12345, CURVE_ORDER - 6, CURVE_ORDER - 1])
    def test_sum_equals_coincurve_add_when_tweak_valid(self, tweak: int) -> None:
        assert self.add(self.BASE, tweak) == self.BASE.add(tweak.to_bytes(32, "big")).format()

    def test_zero_tweak_returns_base_like_tweak_add(self) -> None:
        assert self.add(self.BASE, 0) == self.BASE.format()

    @pytest.mark.parametrize("tweak", [CURVE_ORDER, CURVE_ORDER + 1, 2**256 - 1])
    def test_none_when_tweak_not_below_order(self, tweak: int) -> None:
        assert self.add(self.BASE, tweak) is None

    def test_none_when_sum_is_infinity(self) -> None:
        assert self.add(self.BASE, CURVE_ORDER - 5) is None


def _compressed(point: object) -> bytes:
    out, size = ffi.new("unsigned char[33]"), ffi.new("size_t *", 33)
    lib.secp256k1_ec_pubkey_serialize(
        GLOBAL_CONTEXT.ctx, out, size, point, lib.SECP256K1_EC_COMPRESSED
    )
    return bytes(ffi.buffer(out, 33))
