"""Fuzz-style properties (R14 without atheris): on any input only ValidationError escapes.

Each parser gets arbitrary text (including lone surrogates and control characters) and
mutations of valid inputs (substituted, inserted, deleted and case-flipped characters),
which reach far deeper into the checksum and structure checks than random text does.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpgnode.domain.custody.addresses import parse_address
from dpgnode.domain.custody.bip32 import (
    decode_extended_private_key,
    decode_extended_public_key,
    master_from_seed,
    parse_path,
)
from dpgnode.domain.custody.descriptors import add_checksum, parse_descriptor
from dpgnode.domain.custody.encoding import b58check_decode, bech32_decode, decode_segwit
from dpgnode.domain.custody.evm import parse_evm_address
from dpgnode.domain.custody.extkeys import parse_account_key
from dpgnode.domain.custody.mnemonic import validate_mnemonic
from dpgnode.domain.custody.networks import AddressType, Network, parse_network
from dpgnode.domain.custody.uris import parse_bip21, parse_eip681, parse_eip681_number
from dpgnode.domain.money import parse_units
from dpgnode.errors import ValidationError

_ACCOUNT = master_from_seed(bytes(range(32))).derive_path("m/84'/0'/0'")
_XPUB = _ACCOUNT.public().serialize()
SAMPLES = [
    _XPUB,
    _ACCOUNT.public().serialize("zpub"),
    _ACCOUNT.serialize(),
    add_checksum(f"wpkh([d34db33f/84h/0h/0h]{_XPUB}/<0;1>/*)"),
    f"sh(wpkh({_XPUB}/0/*))",
    f"tr([00000000]{_XPUB}/*)",
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
    "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
    "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH",
    "2NByiBUaEXrhmqAsg7BbLpcQSAQs1EDwt5w",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "bitcoin:bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4?amount=0.001&label=a%20b&x=%C3%A9",
    "ethereum:0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359@1?value=2.014e18&gasLimit=21000",
    "ethereum:pay-0xdAC17F958D2ee523a2206206994597C13D831ec7@1/transfer"
    "?address=0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359&uint256=1e6",
    "m/84'/0'/0'/1/5",
    "abandon " * 11 + "about",
    "2.014e18",
]

any_text = st.text(st.characters(exclude_categories=()), max_size=200)
edits = st.lists(
    st.tuples(
        st.sampled_from(["replace", "insert", "delete", "swapcase", "duplicate"]),
        st.integers(0, 400),
        st.characters(exclude_categories=()),
    ),
    max_size=4,
)


def _mutate(sample: str, operations: list[tuple[str, int, str]]) -> str:
    text = sample
    for operation, position, char in operations:
        at = position % (len(text) + 1)
        if operation == "replace":
            text = text[:at] + char + text[at + 1 :]
        elif operation == "insert":
            text = text[:at] + char + text[at:]
        elif operation == "delete":
            text = text[:at] + text[at + 1 :]
        elif operation == "swapcase":
            text = text[:at] + text[at : at + 1].swapcase() + text[at + 1 :]
        else:
            text = text[:at] + text[at:] + text[at:]
    return text


fuzz_inputs = st.one_of(any_text, st.builds(_mutate, st.sampled_from(SAMPLES), edits))

PARSERS: list[Callable[[str], object]] = [
    parse_account_key,
    lambda t: parse_account_key(t, Network.REGTEST, AddressType.P2TR),
    lambda t: parse_account_key(t, address_type=AddressType.EVM),
    lambda t: parse_descriptor(t),
    lambda t: decode_extended_public_key(t),
    lambda t: decode_extended_private_key(t, network=Network.SIGNET),
    lambda t: parse_path(t),
    lambda t: parse_evm_address(t),
    lambda t: parse_eip681(t),
    lambda t: parse_eip681_number(t),
    lambda t: parse_units(t, 8),
    lambda t: validate_mnemonic(t),
    lambda t: parse_network(t),
    lambda t: b58check_decode(t, field="x"),
    lambda t: bech32_decode(t, field="x"),
    lambda t: decode_segwit(t, field="x"),
    *(lambda t, n=n: parse_bip21(t, n) for n in Network),
    *(lambda t, n=n: parse_address(t, n) for n in Network),
]


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=fuzz_inputs)
def test_only_validation_error_escapes_when_any_parser_gets_any_text(text: str) -> None:
    messages: list[object] = []
    for parser in PARSERS:
        try:
            parser(text)
        except ValidationError as error:
            messages.append(error.message)
    assert all(isinstance(m, str) and m for m in messages)


def test_the_samples_themselves_parse_when_unmutated() -> None:
    # The mutations start from inputs that really are valid somewhere, so the fuzzer spends
    # its budget past the first check rather than at it.
    accepted = 0
    for sample in SAMPLES:
        for parser in PARSERS:
            try:
                parser(sample)
            except ValidationError:
                continue
            accepted += 1
            break
    assert accepted == len(SAMPLES)
