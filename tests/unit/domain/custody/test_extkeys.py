"""Watch-only accounts: prefixes, networks, address-type rules, descriptors, fast path."""

from __future__ import annotations

import pytest

from dpgnode.domain.custody.addresses import address_from_public_key, parse_address
from dpgnode.domain.custody.bip32 import HARDENED, master_from_seed
from dpgnode.domain.custody.descriptors import add_checksum, descriptor_checksum
from dpgnode.domain.custody.extkeys import (
    MAX_BATCH,
    AccountKey,
    Branch,
    derive_addresses,
    parse_account_key,
)
from dpgnode.domain.custody.networks import AddressType, Network
from dpgnode.errors import ValidationError

# Bitcoin Core's doc/descriptors.md example (checksum from `getdescriptorinfo`).
CORE_XPUB = (
    "xpub6DJ2dNUysrn5Vt36jH2KLBT2i1auw1tTSSomg8PhqNiUtx8QX2SvC9nrHu81fT41fvDUnhMjEzQgXnQjKEu3o"
    "aqMSzhSrHMxyyoEAmUHQbY"
)
CORE_DESCRIPTOR = f"wpkh([d34db33f/84h/0h/0h]{CORE_XPUB}/0/*)"
MASTER = master_from_seed(bytes(range(32)))
ACCOUNT = MASTER.derive_path("m/84'/0'/0'")
XPUB = ACCOUNT.public().serialize()
XPRV = ACCOUNT.serialize()
TEST_ACCOUNT = master_from_seed(bytes(range(32)), Network.REGTEST).derive_path("m/84'/1'/0'")


def slow_address(key: AccountKey, branch: int, index: int) -> str:
    """Reference path: plain CKDpub one level at a time, then the address encoder."""
    node = key.key.derive_path(key.branch_path(branch)).child(index)
    return address_from_public_key(node.public_key, key.address_type, key.network)


class TestDescriptorChecksum:
    def test_checksum_matches_bitcoin_core_when_computed(self) -> None:
        assert descriptor_checksum("raw(deadbeef)") == "89f8spxm"
        assert descriptor_checksum(CORE_DESCRIPTOR) == "cjjspncu"

    def test_descriptor_parses_with_and_without_checksum_when_valid(self) -> None:
        bare = parse_account_key(CORE_DESCRIPTOR)
        checked = parse_account_key(CORE_DESCRIPTOR + "#cjjspncu")
        assert bare == checked
        assert checked.address_type is AddressType.P2WPKH
        assert checked.origin is not None
        assert checked.origin.fingerprint == bytes.fromhex("d34db33f")
        assert checked.branches == ((0,),)
        assert checked.descriptor() == CORE_DESCRIPTOR + "#cjjspncu"

    @pytest.mark.parametrize(
        "checksum", ["cjjspncv", "cjjspnc", "cjjspncuu", "CJJSPNCU", "cjjspnbu"]
    )
    def test_descriptor_is_refused_when_checksum_is_wrong(self, checksum: str) -> None:
        with pytest.raises(ValidationError, match="checksum") as caught:
            parse_account_key(f"{CORE_DESCRIPTOR}#{checksum}", field="descriptor")
        assert caught.value.field == "descriptor"

    def test_descriptor_derives_the_addresses_core_documents_when_ranged(self) -> None:
        # bitcoin-cli deriveaddresses "<CORE_DESCRIPTOR>#cjjspncu" "[0,2]" derives exactly
        # these from the key: checked here against the independent slow path.
        key = parse_account_key(CORE_DESCRIPTOR)
        fast = key.addresses(0, 0, 3)
        assert fast == [slow_address(key, 0, i) for i in range(3)]
        assert all(a.startswith("bc1q") for a in fast)


class TestDescriptors:
    @pytest.mark.parametrize(
        ("template", "address_type", "prefix"),
        [
            ("wpkh({})", AddressType.P2WPKH, "bc1q"),
            ("sh(wpkh({}))", AddressType.P2SH_P2WPKH, "3"),
            ("pkh({})", AddressType.P2PKH, "1"),
            ("tr({})", AddressType.P2TR, "bc1p"),
        ],
    )
    def test_each_script_gives_its_address_type_when_parsed(
        self, template: str, address_type: AddressType, prefix: str
    ) -> None:
        key_expr = f"[0badf00d/84h/0h/0h]{XPUB}/<0;1>/*"
        account = parse_account_key(add_checksum(template.format(key_expr)))
        assert account.address_type is address_type
        assert account.branches == ((0,), (1,))
        assert account.address(Branch.RECEIVE, 3).startswith(prefix)
        assert account.address(Branch.CHANGE, 3) == slow_address(account, 1, 3)
        assert account.path(Branch.CHANGE, 3) == (84 | HARDENED, HARDENED, HARDENED, 1, 3)
        assert parse_account_key(account.descriptor()) == account

    def test_multipath_step_anywhere_gives_branch_paths_when_parsed(self) -> None:
        account = parse_account_key(f"wpkh({XPUB}/7/<2;5;9>/*)")
        assert account.branches == ((7, 2), (7, 5), (7, 9))
        assert account.origin is None
        assert account.path(0, 1) is None
        assert account.address(2, 4) == slow_address(account, 2, 4)

    def test_unranged_wildcard_only_gives_children_of_the_key_when_parsed(self) -> None:
        account = parse_account_key(f"tr({XPUB}/*)")
        assert account.branches == ((),)
        assert account.address(0, 0) == address_from_public_key(
            ACCOUNT.public().child(0).public_key, AddressType.P2TR, Network.MAINNET
        )

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            (f"wpkh({XPUB})", "/\\*"),
            (f"wpkh({XPUB}/0)", "/\\*"),
            (f"wpkh({XPUB}/0/*')", "hardened wildcard"),
            (f"wpkh({XPUB}/0h/*)", "unhardened"),
            (f"wpkh({XPUB}/<0;0>/*)", "distinct"),
            (f"wpkh({XPUB}/<0;1>/<2;3>/*)", "one multipath"),
            (f"wsh(pkh({XPUB}/*))", "supported"),
            (f"tr({XPUB}/*,pk({XPUB}/*))", "single-key"),
            (f"sh(multi(1,{XPUB}/*))", "supported"),
            (f"wpkh([d34db33/84h]{XPUB}/*)", "origin"),
            (f"wpkh([d34db33f/84x]{XPUB}/*)", "origin"),
            ("wpkh(02" + "11" * 32 + "/*)", "xpub or tpub"),
            (f"wpkh({XPUB[:-1]}/*)", "checksum"),
        ],
    )
    def test_descriptor_is_refused_when_unsupported_or_malformed(
        self, text: str, message: str
    ) -> None:
        with pytest.raises(ValidationError, match=message):
            parse_account_key(text)

    @pytest.mark.parametrize(
        "secret",
        [XPRV, "KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn"],
        ids=["xprv", "wif"],
    )
    def test_private_key_in_a_descriptor_is_refused_without_echo_when_parsed(
        self, secret: str
    ) -> None:
        with pytest.raises(ValidationError, match="private") as caught:
            parse_account_key(f"wpkh({secret}/0/*)")
        assert secret not in str(caught.value)
        assert secret[5:25] not in repr(caught.value.details)

    def test_descriptor_type_conflict_is_refused_when_a_type_is_asked(self) -> None:
        with pytest.raises(ValidationError, match="p2wpkh"):
            parse_account_key(CORE_DESCRIPTOR, address_type=AddressType.P2TR)

    def test_testnet_descriptor_needs_a_tpub_when_network_is_regtest(self) -> None:
        tpub = TEST_ACCOUNT.public().serialize()
        account = parse_account_key(f"wpkh({tpub}/0/*)", Network.REGTEST)
        assert account.address(0, 0).startswith("bcrt1q")
        with pytest.raises(ValidationError, match="expected regtest"):
            parse_account_key(f"wpkh({XPUB}/0/*)", Network.REGTEST)

    def test_zpub_in_a_descriptor_is_refused_when_parsed(self) -> None:
        with pytest.raises(ValidationError, match="BIP380"):
            parse_account_key(f"wpkh({ACCOUNT.public().serialize('zpub')}/0/*)")


class TestExtendedKeyAccounts:
    @pytest.mark.parametrize(
        ("prefix", "network", "expected_type"),
        [
            ("xpub", Network.MAINNET, AddressType.P2PKH),
            ("ypub", Network.MAINNET, AddressType.P2SH_P2WPKH),
            ("zpub", Network.MAINNET, AddressType.P2WPKH),
            ("tpub", Network.TESTNET, AddressType.P2PKH),
            ("upub", Network.TESTNET, AddressType.P2SH_P2WPKH),
            ("vpub", Network.TESTNET, AddressType.P2WPKH),
        ],
    )
    def test_prefix_implies_address_type_when_none_is_asked(
        self, prefix: str, network: Network, expected_type: AddressType
    ) -> None:
        node = master_from_seed(bytes(range(32)), network).derive_path("m/0'").public()
        account = parse_account_key(node.serialize(prefix))
        assert account.address_type is expected_type
        assert account.network is network
        assert account.key_text() == node.serialize(prefix)
        address = account.address(0, 0)
        assert parse_address(address, network).script_pubkey == account.script_pubkey(0, 0)

    def test_xpub_accepts_any_address_type_when_asked(self) -> None:
        for address_type in AddressType:
            account = parse_account_key(XPUB, address_type=address_type)
            assert account.address_type is address_type

    @pytest.mark.parametrize("prefix", ["ypub", "zpub"])
    def test_slip132_prefix_refuses_another_type_when_asked(self, prefix: str) -> None:
        with pytest.raises(ValidationError, match="export an xpub"):
            parse_account_key(ACCOUNT.public().serialize(prefix), address_type=AddressType.P2TR)

    def test_regtest_key_gives_bcrt_addresses_when_asked_for_regtest(self) -> None:
        vpub = TEST_ACCOUNT.public().serialize("vpub")
        assert parse_account_key(vpub, Network.REGTEST).address(0, 0).startswith("bcrt1q")
        assert parse_account_key(vpub, Network.SIGNET).address(0, 0).startswith("tb1q")
        assert parse_account_key(vpub).network is Network.TESTNET

    def test_multisig_prefix_is_refused_when_parsed(self) -> None:
        with pytest.raises(ValidationError, match="multisig"):
            parse_account_key(ACCOUNT.public().serialize("Zpub"))

    @pytest.mark.parametrize("prefix", ["xprv", "zprv", "yprv"])
    def test_private_extended_key_is_refused_without_echo_when_parsed(self, prefix: str) -> None:
        secret = ACCOUNT.serialize(prefix)
        with pytest.raises(ValidationError, match="private") as caught:
            parse_account_key(secret, field="xpub")
        assert caught.value.field == "xpub"
        assert secret not in str(caught.value)

    def test_evm_account_has_only_the_receive_branch_when_parsed(self) -> None:
        account = parse_account_key(XPUB, address_type=AddressType.EVM)
        assert account.branches == ((0,),)
        with pytest.raises(ValidationError, match="branch"):
            account.address(Branch.CHANGE, 0)
        with pytest.raises(ValidationError, match="descriptor"):
            account.descriptor()


class TestFastPath:
    @pytest.mark.parametrize("address_type", list(AddressType))
    def test_fast_path_equals_slow_path_when_deriving_a_batch(
        self, address_type: AddressType
    ) -> None:
        account = parse_account_key(XPUB, address_type=address_type)
        batch = derive_addresses(account, 0, 1000, 25)
        if address_type is AddressType.EVM:
            from dpgnode.domain.custody.evm import evm_address_from_public_key

            slow = [
                evm_address_from_public_key(account.public_key(0, i)) for i in range(1000, 1025)
            ]
        else:
            slow = [slow_address(account, 0, i) for i in range(1000, 1025)]
        assert batch == slow
        assert [account.address(0, i) for i in (1000, 1024)] == [batch[0], batch[-1]]

    @pytest.mark.parametrize(
        ("start", "count"),
        [(-1, 1), (HARDENED, 1), (HARDENED - 1, 2), (0, -1), (0, MAX_BATCH + 1)],
    )
    def test_out_of_range_indices_are_refused_when_deriving(self, start: int, count: int) -> None:
        with pytest.raises(ValidationError):
            derive_addresses(parse_account_key(XPUB), 0, start, count)

    def test_last_non_hardened_index_is_derivable_when_asked(self) -> None:
        account = parse_account_key(XPUB)
        assert derive_addresses(account, 1, HARDENED - 1, 1) == [
            slow_address(account, 1, HARDENED - 1)
        ]
        assert derive_addresses(account, 1, 5, 0) == []

    def test_unknown_branch_is_refused_when_deriving(self) -> None:
        with pytest.raises(ValidationError, match="branch"):
            parse_account_key(XPUB).address(2, 0)


class TestLooseInputs:
    def test_network_and_type_given_as_strings_are_accepted_when_known(self) -> None:
        tpub = TEST_ACCOUNT.public().serialize()
        account = parse_account_key(tpub, "regtest", "p2tr")  # type: ignore[arg-type]
        assert account.network is Network.REGTEST
        assert account.address_type is AddressType.P2TR

    def test_unknown_network_or_type_is_refused_when_given_as_strings(self) -> None:
        with pytest.raises(ValidationError) as caught:
            parse_account_key(XPUB, address_type="p2wsh")  # type: ignore[arg-type]
        assert caught.value.field == "address_type"
        with pytest.raises(ValidationError) as caught:
            parse_account_key(XPUB, "liquid")  # type: ignore[arg-type]
        assert caught.value.field == "network"
