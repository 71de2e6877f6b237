"""Keychains: create / import through a signer, watch-only keys, and what reaches storage."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from dpgnode.adapters.storage import tables
from dpgnode.domain.custody.bip32 import master_from_seed
from dpgnode.domain.custody.descriptors import add_checksum
from dpgnode.domain.custody.mnemonic import mnemonic_to_seed
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.wallet import KeychainKind, Scheme
from dpgnode.errors import ConflictError, NotFoundError, ValidationError
from dpgnode.node import Node
from dpgnode.ports.signer import SealedSeed
from dpgnode.services.custody.wallets import AccountSpec, keychain_aad
from tests.support.custody import VECTOR_MNEMONIC
from tests.support.memory_signer import MemorySigner

_EXT_PRIVATE = re.compile(r"(?<![1-9A-HJ-NP-Za-km-z])[xtyzuv]prv[1-9A-HJ-NP-Za-km-z]{100,}")
# BIP84's published vectors for VECTOR_MNEMONIC (no passphrase), account 0.
BIP84_ZPUB = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDK"
    "f31mGDtKsAYz2oz2AGutZYs"
)
BIP84_FIRST = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
BIP84_FIRST_CHANGE = "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el"
# Hardhat / anvil development mnemonic: account 0 is a well-known address.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_FIRST = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
BIP84_TPUB_VECTOR_FIRST_TESTNET = "tb1q6rz28mcfaxtmd6v789l9rrlrusdprr9pqcpvkl"
# BIP86's published vector for VECTOR_MNEMONIC, m/86'/0'/0'/0/0.
BIP86_FIRST = "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"


@pytest.fixture
def signer() -> MemorySigner:
    # The memory signer serialises with its own network (the HSM signer reads it from the
    # version bytes); these tests import mainnet vectors.
    return MemorySigner(network=Network.MAINNET)


@pytest.fixture
def test_signer() -> MemorySigner:
    return MemorySigner(network=Network.REGTEST)


class TestImportMnemonic:
    def test_addresses_match_bip84_vectors_when_imported_on_mainnet(
        self, node: Node, signer: MemorySigner
    ) -> None:
        view = node.custody.keychains.import_mnemonic(
            signer, VECTOR_MNEMONIC, network=Network.MAINNET, accounts=[AccountSpec(Scheme.BIP84)]
        )
        (account,) = view.accounts
        assert (account.path, account.xpub) == ("m/84'/0'/0'", BIP84_ZPUB)
        assert node.custody.addresses.issue(account.id).address.address == BIP84_FIRST
        change = node.custody.addresses.issue(account.id, branch=1)
        assert change.address.address == BIP84_FIRST_CHANGE

    def test_evm_account_matches_the_dev_mnemonic_when_imported(
        self, node: Node, test_signer: MemorySigner
    ) -> None:
        view = node.custody.keychains.import_mnemonic(
            test_signer, DEV_MNEMONIC, network=Network.REGTEST, accounts=[AccountSpec(Scheme.EVM)]
        )
        (account,) = view.accounts
        assert account.path == "m/44'/60'/0'"
        assert node.custody.addresses.issue(account.id).address.address == DEV_FIRST

    def test_default_accounts_are_bip84_and_evm_when_none_are_asked_for(
        self, node: Node, test_signer: MemorySigner
    ) -> None:
        view = node.custody.keychains.import_mnemonic(
            test_signer, VECTOR_MNEMONIC, network=Network.TESTNET
        )
        assert [a.scheme for a in view.accounts] == [Scheme.BIP84, Scheme.EVM]
        first = node.custody.addresses.issue(view.accounts[0].id).address.address
        assert first == BIP84_TPUB_VECTOR_FIRST_TESTNET

    def test_passphrase_changes_every_key_when_given(
        self, node: Node, signer: MemorySigner
    ) -> None:
        view = node.custody.keychains.import_mnemonic(
            signer, VECTOR_MNEMONIC, passphrase="TREZOR", network=Network.MAINNET,
            accounts=[AccountSpec(Scheme.BIP84)],
        )
        assert view.accounts[0].xpub != BIP84_ZPUB

    def test_bad_checksum_is_refused_without_echoing_a_word_when_imported(
        self, node: Node, signer: MemorySigner
    ) -> None:
        phrase = VECTOR_MNEMONIC.replace("about", "abandon")
        with pytest.raises(ValidationError) as caught:
            node.custody.keychains.import_mnemonic(signer, phrase)
        assert "abandon" not in caught.value.message
        assert node.custody.keychains.keychains() == []

    def test_same_seed_twice_is_a_conflict_when_imported_again(
        self, node: Node, signer: MemorySigner
    ) -> None:
        node.custody.keychains.import_mnemonic(signer, VECTOR_MNEMONIC)
        with pytest.raises(ConflictError):
            node.custody.keychains.import_mnemonic(signer, VECTOR_MNEMONIC)
        assert len(node.custody.keychains.keychains()) == 1


class TestCreate:
    @pytest.mark.parametrize("words", [12, 24])
    def test_new_mnemonic_reopens_to_the_stored_xpubs_when_its_seal_is_opened(
        self, node: Node, test_signer: MemorySigner, words: int
    ) -> None:
        signer = test_signer
        created = node.custody.keychains.create(
            signer, words=words, network=Network.REGTEST, label="hot wallet"
        )
        assert len(created.mnemonic.split()) == words
        assert created.view.keychain.kind is KeychainKind.SEED
        assert "mnemonic=<hidden>" in repr(created)
        # The sealed seed opens only for this keychain and yields the same account keys.
        sealed = SealedSeed.from_json(created.view.keychain.sealed_seed or "")
        assert sealed.aad == keychain_aad(created.view.keychain.id)
        versions = {Scheme.BIP84: "045f1cf6", Scheme.EVM: "043587cf"}  # vpub, tpub
        for account in created.view.accounts:
            version = bytes.fromhex(versions[account.scheme])
            assert signer.account_xpub(sealed, account.path, version=version) == account.xpub

    def test_odd_word_counts_are_refused_when_creating(
        self, node: Node, test_signer: MemorySigner
    ) -> None:
        signer = test_signer
        with pytest.raises(ValidationError):
            node.custody.keychains.create(signer, words=15)

    def test_nothing_secret_is_stored_when_a_wallet_is_created(
        self, node: Node, test_signer: MemorySigner
    ) -> None:
        signer = test_signer
        created = node.custody.keychains.create(signer, words=12, network=Network.REGTEST)
        with node.engine.connect() as conn:
            rows = [dict(r) for t in (tables.custody_keychains, tables.custody_accounts)
                    for r in conn.execute(select(t)).mappings()]
        dump = repr(rows)
        assert created.mnemonic not in dump
        assert all(a.xpub[1:4] == "pub" for a in created.view.accounts)
        # No serialized private key: a base58 run *starting* with a private prefix. (A bare
        # "prv" search failed now and then: a random xpub contains it one time in ~50.)
        assert not _EXT_PRIVATE.search(dump)
        master = master_from_seed(mnemonic_to_seed(created.mnemonic), Network.REGTEST)
        for account in created.view.accounts:
            secret = master.derive_path(account.path)
            assert secret.serialize() not in dump
            assert secret.secret.hex() not in dump
        # The thorough scan (WIF, raw keys, logs, files) is R22's: test_no_secrets_at_rest.py.


class TestWatchOnly:
    def test_zpub_becomes_a_bip84_account_when_added(self, node: Node) -> None:
        view = node.custody.keychains.add_watch_only(BIP84_ZPUB, network=Network.MAINNET)
        (account,) = view.accounts
        assert (view.keychain.kind, account.scheme) == (KeychainKind.WATCH_ONLY, Scheme.BIP84)
        assert not view.keychain.can_spend
        assert node.custody.addresses.issue(account.id).address.address == BIP84_FIRST

    def test_descriptor_keeps_its_origin_when_added(self, node: Node) -> None:
        master = master_from_seed(mnemonic_to_seed(VECTOR_MNEMONIC), Network.MAINNET)
        xpub = master.derive_path("m/86'/0'/0'").public().serialize()
        descriptor = add_checksum(f"tr([{master.fingerprint().hex()}/86h/0h/0h]{xpub}/<0;1>/*)")
        view = node.custody.keychains.add_watch_only(descriptor, network=Network.MAINNET)
        (account,) = view.accounts
        assert (account.scheme, account.path, account.account) == (Scheme.BIP86, "m/86'/0'/0'", 0)
        assert view.keychain.fingerprint == master.fingerprint().hex()
        assert node.custody.addresses.issue(account.id).address.address == BIP86_FIRST

    @pytest.mark.parametrize(
        "text",
        [
            "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMR"
            "NNU3TGtRBeJgk33yuGBxrMPHi",
            "not a key at all",
            "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDK"
            "f31mGDtKsAYz2oz2AGutZYt",
            "wpkh(L4rK1yDtCWekvXuE6oXD9jCYfFNV2cWRpVuPLBcCU2z8TrisoyY1)",
        ],
        ids=["xprv", "garbage", "bad-checksum", "descriptor-with-wif"],
    )
    def test_bad_keys_are_refused_without_echo_when_added(self, node: Node, text: str) -> None:
        with pytest.raises(ValidationError) as caught:
            node.custody.keychains.add_watch_only(text, network=Network.MAINNET)
        assert text not in caught.value.message
        assert text[:12] not in caught.value.message
        assert node.custody.keychains.keychains() == []

    def test_mainnet_key_is_refused_when_the_wallet_is_regtest(self, node: Node) -> None:
        with pytest.raises(ValidationError):
            node.custody.keychains.add_watch_only(BIP84_ZPUB, network=Network.REGTEST)

    def test_same_key_twice_is_a_conflict_when_added_again(self, node: Node) -> None:
        node.custody.keychains.add_watch_only(BIP84_ZPUB, network=Network.MAINNET)
        with pytest.raises(ConflictError):
            node.custody.keychains.add_watch_only(BIP84_ZPUB, network=Network.MAINNET)


def test_unknown_keychain_is_not_found_when_asked_for(node: Node) -> None:
    with pytest.raises(NotFoundError):
        node.custody.keychains.keychain("kc_missing")


def test_every_keychain_change_is_audited_when_made(node: Node) -> None:
    signer = MemorySigner(network=Network.REGTEST)
    node.custody.keychains.create(signer, words=12, network=Network.REGTEST)
    node.custody.keychains.add_watch_only(BIP84_ZPUB, network=Network.MAINNET)
    actions = [r.action for r in node.custody.audit.records()]
    assert actions == ["wallet.created", "wallet.watch_only_added"]
    assert node.custody.audit.verify().ok
