"""R23/R24: seeds sealed by an HSM-held AES-256-GCM key; any tampering refuses to open."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hdwallet import HDWallet  # type: ignore[import-untyped]
from hdwallet.cryptocurrencies import Bitcoin  # type: ignore[import-untyped]
from hdwallet.derivations import CustomDerivation  # type: ignore[import-untyped]
from hdwallet.hds import BIP32HD  # type: ignore[import-untyped]
from hdwallet.seeds import BIP39Seed  # type: ignore[import-untyped]
from mnemonic import Mnemonic

from dpgnode.adapters.hsm import PinSource, Pkcs11Signer, TokenLocation
from dpgnode.domain.custody.networks import key_version
from dpgnode.errors import IntegrityError, NotFoundError, ValidationError
from dpgnode.ports.signer import HdKeyRef, SealedSeed

pytestmark = pytest.mark.integration

ABANDON = " ".join(["abandon"] * 11 + ["about"])
SEED = Mnemonic("english").to_seed(ABANDON, passphrase="")
ZPUB = bytes.fromhex("04b24746")
BIP84_ACCOUNT_ZPUB = (  # BIP84's test vector: account 0 of "abandon ... about"
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1"
    "ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs"
)
AAD = b"wallet:w_1"


def _replace(sealed: SealedSeed, **changes: Any) -> SealedSeed:
    return dataclasses.replace(sealed, **changes)


class TestSealedSeed:
    def test_sealed_seed_round_trips_to_bip84_vector_when_opened_in_signer(
        self, signer: Pkcs11Signer
    ) -> None:
        sealed = signer.seal_seed(SEED, aad=AAD)
        assert sealed.kek_label == signer.kek_label
        assert len(sealed.nonce) == 12
        assert len(sealed.ciphertext) == len(SEED) + 16
        assert SEED not in sealed.ciphertext
        assert signer.account_xpub(sealed, "m/84'/0'/0'", version=ZPUB) == BIP84_ACCOUNT_ZPUB

    def test_account_xpub_matches_hdwallet_when_testnet_version(self, signer: Pkcs11Signer) -> None:
        seed = bytes(range(7, 71))  # 64 bytes
        sealed = signer.seal_seed(seed, aad=AAD)
        tpub = key_version("tpub").version.to_bytes(4, "big")
        ours = signer.account_xpub(sealed, "m/44'/1'/3'", version=tpub)
        wallet = HDWallet(cryptocurrency=Bitcoin, hd=BIP32HD, network="testnet")
        wallet.from_seed(BIP39Seed(seed.hex())).from_derivation(
            CustomDerivation(path="m/44'/1'/3'")
        )
        assert ours == wallet.xpublic_key()

    def test_same_seed_seals_differently_when_sealed_twice(self, signer: Pkcs11Signer) -> None:
        first = signer.seal_seed(SEED, aad=AAD)
        second = signer.seal_seed(SEED, aad=AAD)
        assert first.nonce != second.nonce
        assert first.ciphertext != second.ciphertext

    def test_stored_form_round_trips_when_serialised(self, signer: Pkcs11Signer) -> None:
        sealed = signer.seal_seed(SEED, aad=AAD)
        restored = SealedSeed.from_json(sealed.to_json())
        assert restored == sealed
        assert signer.account_xpub(restored, "m/84'/0'/0'", version=ZPUB) == BIP84_ACCOUNT_ZPUB

    @pytest.mark.parametrize("position", [0, 31, 63, -16, -1])
    def test_tampered_ciphertext_is_refused_when_opened(
        self, signer: Pkcs11Signer, position: int
    ) -> None:
        sealed = signer.seal_seed(SEED, aad=AAD)
        changed = bytearray(sealed.ciphertext)
        changed[position] ^= 0x80
        with pytest.raises(IntegrityError, match="tampered"):
            signer.account_xpub(
                _replace(sealed, ciphertext=bytes(changed)), "m/84'/0'/0'", version=ZPUB
            )

    @pytest.mark.parametrize(
        "changes",
        [
            {"aad": b"wallet:w_2"},
            {"aad": b""},
            {"nonce": bytes(12)},
            {"ciphertext": b"\0" * 80},
        ],
        ids=["other-aad", "empty-aad", "other-nonce", "forged-ciphertext"],
    )
    def test_altered_seal_is_refused_when_opened(
        self, signer: Pkcs11Signer, changes: dict[str, Any]
    ) -> None:
        sealed = signer.seal_seed(SEED, aad=AAD)
        with pytest.raises(IntegrityError):
            signer.public_key(HdKeyRef(_replace(sealed, **changes), "m/0"))

    @pytest.mark.parametrize(
        "changes",
        [{"ciphertext": b"short"}, {"nonce": bytes(8)}, {"ciphertext": bytes(200)}],
        ids=["truncated", "short-nonce", "oversized"],
    )
    def test_malformed_seal_is_refused_before_the_hsm_when_opened(
        self, signer: Pkcs11Signer, changes: dict[str, Any]
    ) -> None:
        sealed = _replace(signer.seal_seed(SEED, aad=AAD), **changes)
        with pytest.raises(IntegrityError, match="malformed"):
            signer.public_key(HdKeyRef(sealed, "m/0"))

    def test_wrong_kek_is_refused_when_opened(
        self, location: TokenLocation, pin_file: Path, signer: Pkcs11Signer
    ) -> None:
        sealed = signer.seal_seed(SEED, aad=AAD)
        with Pkcs11Signer(location, PinSource(file=pin_file), kek_label="dpg-kek-other") as other:
            other.ensure_kek()
        with pytest.raises(IntegrityError):
            signer.public_key(HdKeyRef(_replace(sealed, kek_label="dpg-kek-other"), "m/0"))

    def test_missing_kek_is_not_found_when_opened(self, signer: Pkcs11Signer) -> None:
        sealed = signer.seal_seed(SEED, aad=AAD)
        with pytest.raises(NotFoundError, match="dpg hsm init"):
            signer.public_key(HdKeyRef(_replace(sealed, kek_label="dpg-kek-none"), "m/0"))

    def test_missing_active_kek_is_not_found_when_sealing(
        self, location: TokenLocation, pin_file: Path
    ) -> None:
        with (
            Pkcs11Signer(location, PinSource(file=pin_file), kek_label="never-made") as signer,
            pytest.raises(NotFoundError),
        ):
            signer.seal_seed(SEED, aad=AAD)

    @pytest.mark.parametrize("seed", [b"", bytes(15), bytes(65), "00" * 32])
    def test_seed_of_wrong_size_is_refused_when_sealing(
        self, signer: Pkcs11Signer, seed: bytes
    ) -> None:
        with pytest.raises(ValidationError):
            signer.seal_seed(seed, aad=AAD)

    def test_private_version_is_refused_when_exporting(self, signer: Pkcs11Signer) -> None:
        sealed = signer.seal_seed(SEED, aad=AAD)
        zprv = key_version("zprv").version.to_bytes(4, "big")
        with pytest.raises(ValidationError, match="public keys only"):
            signer.account_xpub(sealed, "m/84'/0'/0'", version=zprv)
        with pytest.raises(ValidationError):
            signer.account_xpub(sealed, "m/84'/0'/0'", version=b"\x01\x02\x03\x04")


class TestKekRotation:
    def test_rotated_seal_opens_under_new_kek_when_rotated(
        self, location: TokenLocation, pin_file: Path, signer: Pkcs11Signer
    ) -> None:
        old = signer.seal_seed(SEED, aad=AAD)
        with Pkcs11Signer(location, PinSource(file=pin_file), kek_label="dpg-kek-2") as rotated:
            rotated.ensure_kek()
            new = rotated.rotate_kek(old)
            assert new.kek_label == "dpg-kek-2"
            assert new.aad == old.aad
            assert new.ciphertext != old.ciphertext
            xpub = rotated.account_xpub(new, "m/84'/0'/0'", version=ZPUB)
        assert xpub == BIP84_ACCOUNT_ZPUB

    def test_tampered_seal_is_refused_when_rotating(self, signer: Pkcs11Signer) -> None:
        sealed = signer.seal_seed(SEED, aad=AAD)
        with pytest.raises(IntegrityError):
            signer.rotate_kek(_replace(sealed, aad=b"other"))
