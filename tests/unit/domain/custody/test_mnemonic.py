"""BIP39 through the mnemonic library: normalization, refusals that never echo words."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpgnode.domain.custody.mnemonic import (
    mnemonic_from_entropy,
    mnemonic_to_seed,
    normalize_mnemonic,
    validate_mnemonic,
)
from dpgnode.errors import ValidationError

ABANDON = "abandon " * 11 + "about"


def test_stray_spaces_and_capitals_give_the_same_seed_when_normalized() -> None:
    messy = "  Abandon abandon\tabandon abandon abandon abandon abandon abandon\n"
    messy += "abandon abandon   abandon ABOUT "
    assert normalize_mnemonic(messy) == ABANDON
    assert mnemonic_to_seed(messy) == mnemonic_to_seed(ABANDON)


def test_passphrase_changes_the_seed_when_given() -> None:
    assert mnemonic_to_seed(ABANDON, "x") != mnemonic_to_seed(ABANDON)


@pytest.mark.parametrize("count", [11, 13, 25, 0])
def test_wrong_word_count_is_refused_when_validated(count: int) -> None:
    with pytest.raises(ValidationError, match=str(count)):
        validate_mnemonic(" ".join(["abandon"] * count))


def test_unknown_word_is_named_by_position_not_by_value_when_refused() -> None:
    phrase = ABANDON.replace("about", "bitcoinx")
    with pytest.raises(ValidationError, match="word 12") as caught:
        mnemonic_to_seed(phrase)
    assert "bitcoinx" not in str(caught.value)
    assert "abandon" not in str(caught.value)


def test_checksum_mismatch_is_refused_when_validated() -> None:
    with pytest.raises(ValidationError, match="checksum") as caught:
        validate_mnemonic("abandon " * 11 + "abandon")
    assert caught.value.field == "mnemonic"


@pytest.mark.parametrize("size", [0, 15, 17, 33])
def test_entropy_of_a_length_bip39_does_not_define_is_refused_when_encoded(size: int) -> None:
    with pytest.raises(ValidationError):
        mnemonic_from_entropy(bytes(size))


def test_unknown_language_is_refused_when_encoding() -> None:
    with pytest.raises(ValidationError, match="language"):
        mnemonic_from_entropy(bytes(16), language="klingon")


def test_japanese_phrase_validates_when_the_language_is_given() -> None:
    phrase = mnemonic_from_entropy(bytes(16), language="japanese")
    assert validate_mnemonic(phrase, language="japanese")
    assert len(mnemonic_to_seed(phrase, language="japanese")) == 64


@settings(max_examples=50, deadline=None)
@given(
    entropy=st.sampled_from([16, 20, 24, 28, 32]).flatmap(
        lambda n: st.binary(min_size=n, max_size=n)
    )
)
def test_generated_phrase_validates_when_encoded_from_any_entropy(entropy: bytes) -> None:
    phrase = mnemonic_from_entropy(entropy)
    assert validate_mnemonic(phrase) == phrase
    assert len(phrase.split()) == len(entropy) * 3 // 4


@pytest.mark.parametrize("language", ["../mnemonic/wordlist/english", "English", ""])
def test_language_outside_the_shipped_lists_is_refused_when_asked(language: str) -> None:
    with pytest.raises(ValidationError, match="language"):
        validate_mnemonic(ABANDON, language=language)
