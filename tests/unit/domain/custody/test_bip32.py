"""BIP32: the published test vectors 1-3 and 5, paths, and CKDpub == N(CKDpriv)."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpgnode.domain.custody.bip32 import (
    HARDENED,
    ExtendedPrivateKey,
    decode_extended_private_key,
    decode_extended_public_key,
    format_path,
    master_from_seed,
    parse_path,
)
from dpgnode.domain.custody.networks import Network
from dpgnode.errors import ValidationError

H = HARDENED
# BIP32 test vectors 1-3: seed, then (xpub, xprv, next child index) per chain step.
VECTORS = [
    (
        "000102030405060708090a0b0c0d0e0f",
        [
            (
                "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8",
                "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi",
                0 + H,
            ),
            (
                "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw",
                "xprv9uHRZZhk6KAJC1avXpDAp4MDc3sQKNxDiPvvkX8Br5ngLNv1TxvUxt4cV1rGL5hj6KCesnDYUhd7oWgT11eZG7XnxHrnYeSvkzY7d2bhkJ7",
                1,
            ),
            (
                "xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ",
                "xprv9wTYmMFdV23N2TdNG573QoEsfRrWKQgWeibmLntzniatZvR9BmLnvSxqu53Kw1UmYPxLgboyZQaXwTCg8MSY3H2EU4pWcQDnRnrVA1xe8fs",
                2 + H,
            ),
            (
                "xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5",
                "xprv9z4pot5VBttmtdRTWfWQmoH1taj2axGVzFqSb8C9xaxKymcFzXBDptWmT7FwuEzG3ryjH4ktypQSAewRiNMjANTtpgP4mLTj34bhnZX7UiM",
                2,
            ),
            (
                "xpub6FHa3pjLCk84BayeJxFW2SP4XRrFd1JYnxeLeU8EqN3vDfZmbqBqaGJAyiLjTAwm6ZLRQUMv1ZACTj37sR62cfN7fe5JnJ7dh8zL4fiyLHV",
                "xprvA2JDeKCSNNZky6uBCviVfJSKyQ1mDYahRjijr5idH2WwLsEd4Hsb2Tyh8RfQMuPh7f7RtyzTtdrbdqqsunu5Mm3wDvUAKRHSC34sJ7in334",
                1000000000,
            ),
            (
                "xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy",
                "xprvA41z7zogVVwxVSgdKUHDy1SKmdb533PjDz7J6N6mV6uS3ze1ai8FHa8kmHScGpWmj4WggLyQjgPie1rFSruoUihUZREPSL39UNdE3BBDu76",
                None,
            ),
        ],
    ),
    (
        "fffcf9f6f3f0edeae7e4e1dedbd8d5d2cfccc9c6c3c0bdbab7b4b1aeaba8a5a29f9c999693908d8a8784817e7b7875726f6c696663605d5a5754514e4b484542",
        [
            (
                "xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB",
                "xprv9s21ZrQH143K31xYSDQpPDxsXRTUcvj2iNHm5NUtrGiGG5e2DtALGdso3pGz6ssrdK4PFmM8NSpSBHNqPqm55Qn3LqFtT2emdEXVYsCzC2U",
                0,
            ),
            (
                "xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznezpbZb7ap6r1D3tgFxHmwMkQTPH",
                "xprv9vHkqa6EV4sPZHYqZznhT2NPtPCjKuDKGY38FBWLvgaDx45zo9WQRUT3dKYnjwih2yJD9mkrocEZXo1ex8G81dwSM1fwqWpWkeS3v86pgKt",
                0xFFFFFFFF,
            ),
            (
                "xpub6ASAVgeehLbnwdqV6UKMHVzgqAG8Gr6riv3Fxxpj8ksbH9ebxaEyBLZ85ySDhKiLDBrQSARLq1uNRts8RuJiHjaDMBU4Zn9h8LZNnBC5y4a",
                "xprv9wSp6B7kry3Vj9m1zSnLvN3xH8RdsPP1Mh7fAaR7aRLcQMKTR2vidYEeEg2mUCTAwCd6vnxVrcjfy2kRgVsFawNzmjuHc2YmYRmagcEPdU9",
                1,
            ),
            (
                "xpub6DF8uhdarytz3FWdA8TvFSvvAh8dP3283MY7p2V4SeE2wyWmG5mg5EwVvmdMVCQcoNJxGoWaU9DCWh89LojfZ537wTfunKau47EL2dhHKon",
                "xprv9zFnWC6h2cLgpmSA46vutJzBcfJ8yaJGg8cX1e5StJh45BBciYTRXSd25UEPVuesF9yog62tGAQtHjXajPPdbRCHuWS6T8XA2ECKADdw4Ef",
                0xFFFFFFFE,
            ),
            (
                "xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL",
                "xprvA1RpRA33e1JQ7ifknakTFpgNXPmW2YvmhqLQYMmrj4xJXXWYpDPS3xz7iAxn8L39njGVyuoseXzU6rcxFLJ8HFsTjSyQbLYnMpCqE2VbFWc",
                2,
            ),
            (
                "xpub6FnCn6nSzZAw5Tw7cgR9bi15UV96gLZhjDstkXXxvCLsUXBGXPdSnLFbdpq8p9HmGsApME5hQTZ3emM2rnY5agb9rXpVGyy3bdW6EEgAtqt",
                "xprvA2nrNbFZABcdryreWet9Ea4LvTJcGsqrMzxHx98MMrotbir7yrKCEXw7nadnHM8Dq38EGfSh6dqA9QWTyefMLEcBYJUuekgW4BYPJcr9E7j",
                None,
            ),
        ],
    ),
    (
        "4b381541583be4423346c643850da4b320e46a87ae3d2a4e6da11eba819cd4acba45d239319ac14f863b8d5ab5a0d0c64d2e8a1e7d1457df2e5a3c51c73235be",
        [
            (
                "xpub661MyMwAqRbcEZVB4dScxMAdx6d4nFc9nvyvH3v4gJL378CSRZiYmhRoP7mBy6gSPSCYk6SzXPTf3ND1cZAceL7SfJ1Z3GC8vBgp2epUt13",
                "xprv9s21ZrQH143K25QhxbucbDDuQ4naNntJRi4KUfWT7xo4EKsHt2QJDu7KXp1A3u7Bi1j8ph3EGsZ9Xvz9dGuVrtHHs7pXeTzjuxBrCmmhgC6",
                0 + H,
            ),
            (
                "xpub68NZiKmJWnxxS6aaHmn81bvJeTESw724CRDs6HbuccFQN9Ku14VQrADWgqbhhTHBaohPX4CjNLf9fq9MYo6oDaPPLPxSb7gwQN3ih19Zm4Y",
                "xprv9uPDJpEQgRQfDcW7BkF7eTya6RPxXeJCqCJGHuCJ4GiRVLzkTXBAJMu2qaMWPrS7AANYqdq6vcBcBUdJCVVFceUvJFjaPdGZ2y9WACViL4L",
                None,
            ),
        ],
    ),
]

# BIP32 test vector 5: every one of these must be refused with a ValidationError.
INVALID_KEYS = [
    (
        "xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6LBpB85b3D2yc8sfvZU521AAwdZafEz7mnzBBsz4wKY5fTtTQBm",
        "pubkey version / prvkey mismatch",
    ),
    (
        "xprv9s21ZrQH143K24Mfq5zL5MhWK9hUhhGbd45hLXo2Pq2oqzMMo63oStZzFGTQQD3dC4H2D5GBj7vWvSQaaBv5cxi9gafk7NF3pnBju6dwKvH",
        "prvkey version / pubkey mismatch",
    ),
    (
        "xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6Txnt3siSujt9RCVYsx4qHZGc62TG4McvMGcAUjeuwZdduYEvFn",
        "invalid pubkey prefix 04",
    ),
    (
        "xprv9s21ZrQH143K24Mfq5zL5MhWK9hUhhGbd45hLXo2Pq2oqzMMo63oStZzFGpWnsj83BHtEy5Zt8CcDr1UiRXuWCmTQLxEK9vbz5gPstX92JQ",
        "invalid prvkey prefix 04",
    ),
    (
        "xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6N8ZMMXctdiCjxTNq964yKkwrkBJJwpzZS4HS2fxvyYUA4q2Xe4",
        "invalid pubkey prefix 01",
    ),
    (
        "xprv9s21ZrQH143K24Mfq5zL5MhWK9hUhhGbd45hLXo2Pq2oqzMMo63oStZzFAzHGBP2UuGCqWLTAPLcMtD9y5gkZ6Eq3Rjuahrv17fEQ3Qen6J",
        "invalid prvkey prefix 01",
    ),
    (
        "xprv9s2SPatNQ9Vc6GTbVMFPFo7jsaZySyzk7L8n2uqKXJen3KUmvQNTuLh3fhZMBoG3G4ZW1N2kZuHEPY53qmbZzCHshoQnNf4GvELZfqTUrcv",
        "zero depth with non-zero parent fingerprint",
    ),
    (
        "xpub661no6RGEX3uJkY4bNnPcw4URcQTrSibUZ4NqJEw5eBkv7ovTwgiT91XX27VbEXGENhYRCf7hyEbWrR3FewATdCEebj6znwMfQkhRYHRLpJ",
        "zero depth with non-zero parent fingerprint",
    ),
    (
        "xprv9s21ZrQH4r4TsiLvyLXqM9P7k1K3EYhA1kkD6xuquB5i39AU8KF42acDyL3qsDbU9NmZn6MsGSUYZEsuoePmjzsB3eFKSUEh3Gu1N3cqVUN",
        "zero depth with non-zero index",
    ),
    (
        "xpub661MyMwAuDcm6CRQ5N4qiHKrJ39Xe1R1NyfouMKTTWcguwVcfrZJaNvhpebzGerh7gucBvzEQWRugZDuDXjNDRmXzSZe4c7mnTK97pTvGS8",
        "zero depth with non-zero index",
    ),
    (
        "DMwo58pR1QLEFihHiXPVykYB6fJmsTeHvyTp7hRThAtCX8CvYzgPcn8XnmdfHGMQzT7ayAmfo4z3gY5KfbrZWZ6St24UVf2Qgo6oujFktLHdHY4",
        "unknown extended key version",
    ),
    (
        "DMwo58pR1QLEFihHiXPVykYB6fJmsTeHvyTp7hRThAtCX8CvYzgPcn8XnmdfHPmHJiEDXkTiJTVV9rHEBUem2mwVbbNfvT2MTcAqj3nesx8uBf9",
        "unknown extended key version",
    ),
    (
        "xprv9s21ZrQH143K24Mfq5zL5MhWK9hUhhGbd45hLXo2Pq2oqzMMo63oStZzF93Y5wvzdUayhgkkFoicQZcP3y52uPPxFnfoLZB21Teqt1VvEHx",
        "private key 0 not in 1..n-1",
    ),
    (
        "xprv9s21ZrQH143K24Mfq5zL5MhWK9hUhhGbd45hLXo2Pq2oqzMMo63oStZzFAzHGBP2UuGCqWLTAPLcMtD5SDKr24z3aiUvKr9bJpdrcLg1y3G",
        "private key n not in 1..n-1",
    ),
    (
        "xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6Q5JXayek4PRsn35jii4veMimro1xefsM58PgBMrvdYre8QyULY",
        "invalid pubkey 02...07",
    ),
    (
        "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHL",
        "invalid checksum",
    ),
]


class TestBip32Vectors:
    @pytest.mark.parametrize(("seed", "chain"), VECTORS, ids=["vector1", "vector2", "vector3"])
    def test_private_derivation_matches_vector_when_walking_the_chain(
        self, seed: str, chain: list[tuple[str, str, int | None]]
    ) -> None:
        node = master_from_seed(bytes.fromhex(seed))
        for xpub, xprv, child in chain:
            assert node.serialize() == xprv
            assert node.public().serialize() == xpub
            if child is not None:
                node = node.child(child)

    @pytest.mark.parametrize(("seed", "chain"), VECTORS, ids=["vector1", "vector2", "vector3"])
    def test_public_derivation_matches_vector_when_index_is_not_hardened(
        self, seed: str, chain: list[tuple[str, str, int | None]]
    ) -> None:
        for (xpub, _, child), (next_xpub, _, _) in pairwise(chain):
            assert child is not None
            if child >= HARDENED:
                continue
            parent, _ = decode_extended_public_key(xpub)
            assert parent.child(child).serialize() == next_xpub

    @pytest.mark.parametrize(("seed", "chain"), VECTORS, ids=["vector1", "vector2", "vector3"])
    def test_every_vector_key_round_trips_when_decoded_and_serialized(
        self, seed: str, chain: list[tuple[str, str, int | None]]
    ) -> None:
        for xpub, xprv, _ in chain:
            public, version = decode_extended_public_key(xpub)
            assert version.prefix == "xpub"
            assert public.serialize() == xpub
            private, _ = decode_extended_private_key(xprv)
            assert private.serialize() == xprv
            assert private.public() == public

    def test_derive_path_equals_step_by_step_when_given_the_vector_path(self) -> None:
        master = master_from_seed(bytes.fromhex(VECTORS[0][0]))
        leaf = master.derive_path("m/0'/1/2'/2/1000000000")
        assert leaf.serialize() == VECTORS[0][1][-1][1]
        assert master.derive_path("m/0h/1/2h/2/1000000000") == leaf
        assert master.derive_path([H, 1, 2 + H, 2, 1000000000]) == leaf


class TestInvalidKeys:
    @pytest.mark.parametrize(("text", "reason"), INVALID_KEYS, ids=[r for _, r in INVALID_KEYS])
    def test_vector5_key_is_refused_when_decoded_either_way(self, text: str, reason: str) -> None:
        with pytest.raises(ValidationError) as public_error:
            decode_extended_public_key(text, field="xpub")
        assert public_error.value.field == "xpub"
        with pytest.raises(ValidationError):
            decode_extended_private_key(text)

    def test_private_key_is_refused_without_echoing_it_when_a_public_one_is_expected(self) -> None:
        xprv = VECTORS[0][1][1][1]
        with pytest.raises(ValidationError) as caught:
            decode_extended_public_key(xprv, field="account_xpub")
        error = caught.value
        assert error.field == "account_xpub"
        assert "private" in error.message
        rendered = f"{error} {error.details} {error.__cause__!r} {error.__context__!r}"
        assert xprv not in rendered
        assert xprv[4:20] not in rendered

    def test_wrong_network_is_refused_when_a_test_network_is_expected(self) -> None:
        with pytest.raises(ValidationError, match="expected regtest"):
            decode_extended_public_key(VECTORS[0][1][0][0], network=Network.REGTEST)

    def test_test_network_key_takes_the_network_asked_for_when_it_is_a_test_network(self) -> None:
        tpub = master_from_seed(bytes(16), Network.SIGNET).public().serialize()
        assert tpub.startswith("tpub")
        assert decode_extended_public_key(tpub)[0].network is Network.TESTNET
        assert decode_extended_public_key(tpub, network=Network.SIGNET)[0].network is Network.SIGNET
        with pytest.raises(ValidationError, match="expected mainnet"):
            decode_extended_public_key(tpub, network=Network.MAINNET)

    @pytest.mark.parametrize("length", [77, 79])
    def test_payload_of_wrong_length_is_refused_when_checksum_is_valid(self, length: int) -> None:
        from dpgnode.domain.custody.encoding import b58check_encode

        payload = bytes.fromhex("0488b21e") + bytes(length - 4)
        with pytest.raises(ValidationError, match="78 bytes"):
            decode_extended_public_key(b58check_encode(payload))


class TestDerivationRules:
    def test_hardened_child_is_refused_when_only_the_public_key_is_known(self) -> None:
        public = master_from_seed(bytes(32)).public()
        with pytest.raises(ValidationError, match="hardened"):
            public.child(HARDENED)

    def test_depth_beyond_255_is_refused_when_deriving(self) -> None:
        node = master_from_seed(bytes(16)).public()
        for _ in range(255):
            node = node.child(0)
        assert node.depth == 255
        with pytest.raises(ValidationError, match="255"):
            node.child(0)

    def test_seed_of_wrong_length_is_refused_when_building_a_master(self) -> None:
        for size in (0, 15, 65):
            with pytest.raises(ValidationError):
                master_from_seed(bytes(size))

    def test_private_key_never_shows_in_repr_when_printed(self) -> None:
        key = master_from_seed(bytes(range(32)))
        assert key.secret.hex() not in repr(key)
        assert key.secret.hex() not in str(key)
        assert key.chain_code.hex() not in repr(key)
        assert "redacted" in repr(key)

    def test_serialize_refuses_a_version_of_the_other_kind_or_network_when_asked(self) -> None:
        key = master_from_seed(bytes(16))
        with pytest.raises(ValidationError):
            key.serialize("xpub")
        with pytest.raises(ValidationError):
            key.public().serialize("xprv")
        with pytest.raises(ValidationError):
            key.public().serialize("tpub")
        assert key.public().serialize("zpub").startswith("zpub")


@settings(max_examples=60, deadline=None)
@given(
    seed=st.binary(min_size=16, max_size=64),
    path=st.lists(st.integers(0, 2 * HARDENED - 1), min_size=0, max_size=3),
    tail=st.lists(st.integers(0, HARDENED - 1), min_size=1, max_size=3),
)
def test_public_child_equals_public_of_private_child_when_index_is_not_hardened(
    seed: bytes, path: list[int], tail: list[int]
) -> None:
    node: ExtendedPrivateKey = master_from_seed(seed).derive_path(path)
    assert node.public().derive_path(tail) == node.derive_path(tail).public()


class TestPaths:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("m", ()),
            ("m/84'/0'/0'", (84 + H, H, H)),
            ("m/84h/0H/0h/1/7", (84 + H, H, H, 1, 7)),
            ("0/5", (0, 5)),
            ("m/2147483647'", (0xFFFFFFFF,)),
        ],
    )
    def test_path_parses_to_indices_when_well_formed(
        self, text: str, expected: tuple[int, ...]
    ) -> None:
        assert parse_path(text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "m/",
            "m//1",
            "m/-1",
            "m/2147483648",
            "m/1''",
            "m/x",
            "M/1",
            "m/ 1",
            "m/1\n",
            "/".join(["m"] + ["0"] * 256),
        ],
    )
    def test_malformed_path_is_refused_when_parsed(self, text: str) -> None:
        with pytest.raises(ValidationError):
            parse_path(text, field="path")

    def test_format_path_inverts_parse_when_round_tripped(self) -> None:
        assert format_path(parse_path("m/84'/0'/0'/1/5")) == "m/84h/0h/0h/1/5"
        assert format_path((84 + H, 1), marker="'", prefix="") == "84'/1"
