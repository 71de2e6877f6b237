"""BIP39 mnemonics through the ``mnemonic`` library (Trezor's reference implementation).

The caller supplies entropy (the signer reads it from the HSM or the OS), so this module
stays free of randomness; it never calls ``Mnemonic.generate``.

Invariants this module keeps:
- a phrase is normalized (Unicode NFKD, lower case, single spaces) before it is checked or
  stretched, so the same words typed with stray spaces or capitals give the same seed;
- a phrase that fails the word list or the checksum never reaches :func:`mnemonic_to_seed`;
- errors name the position of a bad word, never a word of the phrase (it is a secret).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from mnemonic import Mnemonic

from dpgnode.errors import ValidationError

WORD_COUNTS = (12, 15, 18, 21, 24)
ENTROPY_LENGTHS = (16, 20, 24, 28, 32)
MAX_PHRASE_LENGTH = 1000


LANGUAGES = frozenset(
    {
        "chinese_simplified", "chinese_traditional", "czech", "english", "french", "italian",
        "japanese", "korean", "portuguese", "russian", "spanish", "turkish",
    }
)  # fmt: skip
"""BIP39 word lists the library ships. Checked here: the library builds a file path from
the language name, so an unchecked name could make it read another file."""


@lru_cache(maxsize=len(LANGUAGES))
def _wordlist(language: str) -> Mnemonic:
    """The library object of ``language``; built once (it reads its word list file)."""
    if language not in LANGUAGES:
        raise ValidationError("unknown BIP39 language", field="language")
    return Mnemonic(language)


@lru_cache(maxsize=len(LANGUAGES))
def _known_words(language: str) -> frozenset[str]:
    return frozenset(unicodedata.normalize("NFKD", w) for w in _wordlist(language).wordlist)


def mnemonic_from_entropy(entropy: bytes, language: str = "english") -> str:
    """The BIP39 phrase encoding ``entropy`` (16, 20, 24, 28 or 32 bytes).

    Raises:
        ValidationError: an entropy length BIP39 does not define, or an unknown language.
    """
    if not isinstance(entropy, bytes) or len(entropy) not in ENTROPY_LENGTHS:
        raise ValidationError("BIP39 entropy is 16, 20, 24, 28 or 32 bytes", field="entropy")
    return _wordlist(language).to_mnemonic(entropy)


def normalize_mnemonic(phrase: str) -> str:
    """NFKD, lower case, words separated by single spaces.

    Raises:
        ValidationError: not a string, or implausibly long.
    """
    if not isinstance(phrase, str) or len(phrase) > MAX_PHRASE_LENGTH:
        raise ValidationError("mnemonic must be a phrase of words", field="mnemonic")
    return " ".join(unicodedata.normalize("NFKD", phrase).lower().split())


def validate_mnemonic(phrase: str, language: str = "english") -> str:
    """The normalized phrase, after checking word count, word list and checksum.

    Raises:
        ValidationError: wrong number of words, a word outside the list (by position), or a
            checksum mismatch; the phrase itself is never part of the message.
    """
    normalized = normalize_mnemonic(phrase)
    words = normalized.split(" ") if normalized else []
    if len(words) not in WORD_COUNTS:
        raise ValidationError(
            f"a BIP39 mnemonic has 12, 15, 18, 21 or 24 words, not {len(words)}",
            field="mnemonic",
        )
    library = _wordlist(language)
    known = _known_words(language)
    for position, word in enumerate(words, start=1):
        if word not in known:
            raise ValidationError(
                f"word {position} is not in the {language} BIP39 word list", field="mnemonic"
            )
    if not library.check(normalized):
        raise ValidationError("mnemonic checksum mismatch", field="mnemonic")
    return normalized


def mnemonic_to_seed(phrase: str, passphrase: str = "", language: str = "english") -> bytes:
    """The 64-byte BIP39 seed (PBKDF2-HMAC-SHA512, 2048 rounds) of a valid phrase.

    Raises:
        ValidationError: an invalid phrase (see :func:`validate_mnemonic`) or a passphrase
            that is not a string.
    """
    if not isinstance(passphrase, str):
        raise ValidationError("passphrase must be a string", field="passphrase")
    return Mnemonic.to_seed(validate_mnemonic(phrase, language), passphrase)
