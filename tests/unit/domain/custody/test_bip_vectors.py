"""Published vectors: BIP39 (Trezor), BIP44, BIP49, BIP84, BIP86 and the EVM default path.

All account vectors start from the mnemonic "abandon abandon ... about" (BIP84/BIP86/BIP49
test vectors, SLIP-132 table), so they exercise the whole chain: phrase -> seed -> master ->
account (CKDpriv) -> account xpub text -> parse -> receive/change addresses (CKDpub, fast path).
"""

from __future__ import annotations

import pytest

from dpgnode.domain.custody.bip32 import master_from_seed
from dpgnode.domain.custody.evm import evm_account_path
from dpgnode.domain.custody.extkeys import Branch, parse_account_key
from dpgnode.domain.custody.mnemonic import mnemonic_from_entropy, mnemonic_to_seed
from dpgnode.domain.custody.networks import AddressType, Network

ABANDON = "abandon " * 11 + "about"

# (entropy, phrase, seed with passphrase "TREZOR", master xprv) from trezor/python-mnemonic
# vectors.json.
BIP39_VECTORS = [
    (
        "00000000000000000000000000000000",
        ABANDON,
        "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04",
        "xprv9s21ZrQH143K3h3fDYiay8mocZ3afhfULfb5GX8kCBdno77K4HiA15Tg23wpbeF1pLfs1c5SPmYHrEpTuuRhxMwvKDwqdKiGJS9XFKzUsAF",
    ),
    (
        "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f",
        "legal winner thank year wave sausage worth useful legal winner thank yellow",
        "2e8905819b8723fe2c1d161860e5ee1830318dbf49a83bd451cfb8440c28bd6fa457fe1296106559a3c80937a1c1069be3a3a5bd381ee6260e8d9739fce1f607",
        None,
    ),
    (
        "80808080808080808080808080808080",
        "letter advice cage absurd amount doctor acoustic avoid letter advice cage above",
        "d71de856f81a8acc65e6fc851a38d4d7ec216fd0796d0a6827a3ad6ed5511a30fa280f12eb2e47ed2ac03b5c462a0358d18d69fe4f985ec81778c1b370b652a8",
        None,
    ),
    (
        "ffffffffffffffffffffffffffffffff",
        "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong",
        "ac27495480225222079d7be181583751e86f571027b0497b5b5d11218e0a8a13332572917f0f8e5a589620c6f15b11c61dee327651a14c34e18231052e48c069",
        None,
    ),
    (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "abandon " * 23 + "art",
        "bda85446c68413707090a52022edd26a1c9462295029f2e60cd7c4f2bbd3097170af7a4d73245cafa9c3cca8d561a7c3de6f5d4a10be8ed2a5e608d68f92fcc8",
        None,
    ),
]


@pytest.mark.parametrize(("entropy", "phrase", "seed", "xprv"), BIP39_VECTORS)
def test_bip39_vector_matches_when_encoded_and_stretched(
    entropy: str, phrase: str, seed: str, xprv: str | None
) -> None:
    assert mnemonic_from_entropy(bytes.fromhex(entropy)) == phrase
    stretched = mnemonic_to_seed(phrase, "TREZOR")
    assert stretched.hex() == seed
    if xprv is not None:
        assert master_from_seed(stretched).serialize() == xprv


@pytest.fixture(scope="module")
def master_seed() -> bytes:
    return mnemonic_to_seed(ABANDON)


BIP84_ZPUB = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3Ef"
    "H1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs"
)

# (purpose path, network, serialize as, account key text, type, receive 0, receive 1, change 0)
ACCOUNT_VECTORS = [
    pytest.param(
        "m/84'/0'/0'",
        Network.MAINNET,
        "zpub",
        BIP84_ZPUB,
        AddressType.P2WPKH,
        "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
        "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g",
        "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el",
        id="BIP84",
    ),
    pytest.param(
        "m/86'/0'/0'",
        Network.MAINNET,
        "xpub",
        "xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ",
        AddressType.P2TR,
        "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr",
        "bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh",
        "bc1p3qkhfews2uk44qtvauqyr2ttdsw7svhkl9nkm9s9c3x4ax5h60wqwruhk7",
        id="BIP86",
    ),
    pytest.param(
        "m/49'/1'/0'",
        Network.TESTNET,
        "upub",
        "upub5EFU65HtV5TeiSHmZZm7FUffBGy8UKeqp7vw43jYbvZPpoVsgU93oac7Wk3u6moKegAEWtGNF8DehrnHtv21XXEMYRUocHqguyjknFHYfgY",
        AddressType.P2SH_P2WPKH,
        "2Mww8dCYPUpKHofjgcXcBCEGmniw9CoaiD2",
        None,
        None,
        id="BIP49-testnet",
    ),
    pytest.param(
        "m/49'/0'/0'",
        Network.MAINNET,
        "ypub",
        "ypub6Ww3ibxVfGzLrAH1PNcjyAWenMTbbAosGNB6VvmSEgytSER9azLDWCxoJwW7Ke7icmizBMXrzBx9979FfaHxHcrArf3zbeJJJUZPf663zsP",
        AddressType.P2SH_P2WPKH,
        "37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf",
        None,
        None,
        id="SLIP132-BIP49",
    ),
    pytest.param(
        "m/44'/0'/0'",
        Network.MAINNET,
        "xpub",
        "xpub6BosfCnifzxcFwrSzQiqu2DBVTshkCXacvNsWGYJVVhhawA7d4R5WSWGFNbi8Aw6ZRc1brxMyWMzG3DSSSSoekkudhUd9yLb6qx39T9nMdj",
        AddressType.P2PKH,
        "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA",
        None,
        None,
        id="SLIP132-BIP44",
    ),
]


@pytest.mark.parametrize(
    ("path", "network", "prefix", "key_text", "address_type", "receive0", "receive1", "change0"),
    ACCOUNT_VECTORS,
)
def test_account_vector_matches_when_derived_from_the_mnemonic(
    master_seed: bytes,
    path: str,
    network: Network,
    prefix: str,
    key_text: str,
    address_type: AddressType,
    receive0: str,
    receive1: str | None,
    change0: str | None,
) -> None:
    account = master_from_seed(master_seed, network).derive_path(path)
    assert account.public().serialize(prefix) == key_text
    key = parse_account_key(key_text, network, address_type)
    assert key.address_type is address_type
    assert key.address(Branch.RECEIVE, 0) == receive0
    if receive1 is not None:
        assert key.address(Branch.RECEIVE, 1) == receive1
    if change0 is not None:
        assert key.address(Branch.CHANGE, 0) == change0
    assert key.addresses(Branch.RECEIVE, 0, 2)[0] == receive0


def test_zpub_implies_p2wpkh_when_no_type_is_asked() -> None:
    key = parse_account_key(BIP84_ZPUB)
    assert key.address_type is AddressType.P2WPKH
    assert key.network is Network.MAINNET


# m/44'/60'/0'/0/i of "abandon ... about": Ethereum's most quoted test account, plus the
# next ones computed by eth-account's own HD implementation in the test below.
EVM_FIRST = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"


def test_evm_account_matches_known_address_and_eth_account_when_derived(
    master_seed: bytes,
) -> None:
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    xpub = master_from_seed(master_seed).derive_path(evm_account_path(0)).public().serialize()
    key = parse_account_key(xpub, address_type=AddressType.EVM)
    assert key.address(0, 0) == EVM_FIRST
    for index in (0, 1, 7, 1000):
        expected = Account.from_mnemonic(ABANDON, account_path=f"m/44'/60'/0'/0/{index}").address
        assert key.address(0, index) == expected
