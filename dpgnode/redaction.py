"""Secrets kept out of log lines: by field name, and by the shape of the text itself.

The last line of defence before a log line is written (code should never hand a secret to
a logger), applied to every record, the standard library's (granian, SQLAlchemy, httpx)
and exception texts included. Two passes:

- a field whose *name* says it holds a secret (``password``, ``api_key``, ``seed``,
  ``Authorization``, ``pin``, ``webhookSecret``...) is replaced whole, nested ones too;
- every other text is searched for secrets by *shape*, whatever its field: credentials in
  URLs (``postgresql://user:pw@host`` keeps ``user``) and in query parameters
  (``?api_key=``), ``Authorization`` values (``Bearer``/``Basic``/``token`` credentials),
  API key secrets (40 lower-case hex digits standing alone), operator tokens (``dpgop_``),
  extended private keys (``xprv``/``tprv``/``yprv``/``zprv``...), WIF private keys (checked
  by their Base58Check checksum), BIP39 phrases (12 or more consecutive words of the
  English list) and PEM private keys.

What it cannot tell from other data, and so leaves: a raw 32-byte secret in hex looks like
a transaction id or a hash, which logs need. Masking is one-way; the field stays, with
``***`` (or ``<N bytes>`` for bytes), so a line still shows *that* a value was there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from mnemonic import Mnemonic

from dpgnode.domain.custody.encoding import b58check_decode
from dpgnode.errors import ValidationError

MASK = "***"
_MAX_DEPTH = 8

_SECRET_SUBSTRINGS = (
    "authorization", "api_key", "apikey", "secret", "password", "passwd", "passphrase", "token",
    "seed", "mnemonic", "xprv", "cookie", "private", "credential", "signing_key",
)
"""A field whose name contains one of these holds a secret."""
_SECRET_WORDS = frozenset({"pin", "pins", "wif", "pwd", "dsn", "otp", "auth"})
"""Short names that count only as whole words (``user_pin``, not ``mapping``)."""
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")

_B58 = "1-9A-HJ-NP-Za-km-z"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys, whole blocks.
    (re.compile(r"-----BEGIN[A-Z ]*PRIVATE KEY-----.*?-----END[A-Z ]*PRIVATE KEY-----", re.S),
     MASK),
    # user:password@ (or a lone token@) in any URL; the scheme and host stay.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^/\s@:'\"]*):[^/\s@'\"]*@"), rf"\1\2:{MASK}@"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@:'\"]{16,}@"), rf"\1{MASK}@"),
    # Query parameters named like credentials.
    (re.compile(
        r"(?i)([?&;][a-z0-9_.\-]*(?:key|token|secret|password|passwd|pwd|sig|signature|auth|"
        r"credential|session)[a-z0-9_.\-]*=)[^&#\s'\"]+"
    ), rf"\1{MASK}"),
    # name=value and 'name': 'value' pairs in text (a dict's repr, SQL parameters, a query
    # string, a config dump) whose name says secret; the name stays.
    (re.compile(
        r"(?i)(?<![A-Za-z0-9_\-])((?:[A-Za-z0-9_\-]*(?:password|passwd|secret|passphrase|"
        r"api[_\-]?key|mnemonic|private[_\-]?key|credential|cookie|token)[A-Za-z0-9_\-]*"
        r"|(?:[A-Za-z0-9_\-]*[_\-])?(?:pin|seed|wif|pwd))['\"]?\s*[:=]\s*)"
        r"(?:'[^']*'|\"[^\"]*\"|[^\s,;&}\])'\"]+)"
    ), rf"\1{MASK}"),
    # Header lines and dumps: "Authorization: <anything up to the line's end or a quote>".
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n,}]+"), rf"\1{MASK}"),
    # Credentials after an HTTP auth scheme.
    (re.compile(r"(?i)\b(bearer|basic|token|digest)(\s+)[A-Za-z0-9._~+/=\-]{16,}"),
     rf"\1\2{MASK}"),
    # Operator tokens and API key secrets (40 hex digits standing alone: an EVM address's
    # "0x" prefix and a 64-digit txid do not qualify).
    (re.compile(r"\bdpgop_[0-9a-fA-F]{8,}"), f"dpgop_{MASK}"),
    (re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{40}(?![0-9A-Za-z])"), MASK),
    # Serialized extended private keys (BIP32 and SLIP-132 versions).
    (re.compile(rf"(?<![{_B58}])[xtyzuvXYZUV]prv[{_B58}]{{100,112}}(?![{_B58}])"), MASK),
)
_WIF = re.compile(rf"(?<![{_B58}])[5KLc9][{_B58}]{{50,51}}(?![{_B58}])")
_WORD = re.compile(r"[a-z]+")
_PHRASE_WORDS = 12


@lru_cache(maxsize=1)
def _bip39_words() -> frozenset[str]:
    return frozenset(Mnemonic("english").wordlist)


def is_secret_name(name: str) -> bool:
    """Whether a field called ``name`` holds a secret (``webhookSecret``, ``X-Api-Key``...)."""
    words = _NON_ALNUM.split(_CAMEL.sub("_", name).lower())
    joined = "_".join(words)
    if any(part in joined for part in _SECRET_SUBSTRINGS):
        return True
    return any(word in _SECRET_WORDS for word in words)


def redact_text(text: str) -> str:
    """``text`` with every secret found by its shape replaced (see the module docstring)."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    text = _WIF.sub(_mask_wif, text)
    return _mask_phrases(text)


def _mask_wif(match: re.Match[str]) -> str:
    try:
        payload = b58check_decode(match.group(), field="wif")
    except ValidationError:
        return match.group()
    is_key = payload[:1] in (b"\x80", b"\xef") and len(payload) in (33, 34)
    return MASK if is_key else match.group()


def _mask_phrases(text: str) -> str:
    if len(text) < _PHRASE_WORDS * 3:
        return text
    words = _bip39_words()
    spans: list[tuple[int, int]] = []
    run: list[re.Match[str]] = []
    for match in _WORD.finditer(text.lower()):
        if match.group() in words:
            run.append(match)
            continue
        if len(run) >= _PHRASE_WORDS:
            spans.append((run[0].start(), run[-1].end()))
        run = []
    if len(run) >= _PHRASE_WORDS:
        spans.append((run[0].start(), run[-1].end()))
    for start, end in reversed(spans):
        text = text[:start] + MASK + text[end:]
    return text


def redact_value(value: Any, depth: int = 0) -> Any:
    """``value`` with secrets masked: texts by shape, mappings by field name, recursively.

    Objects other than plain data are rendered with ``repr`` first (as a log renderer would)
    so that their text is searched too; secret-holding types (pydantic's ``SecretStr``) and
    bytes are never rendered.
    """
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact_text(value)
    if depth >= _MAX_DEPTH:
        return MASK
    if isinstance(value, Mapping):
        return {
            key: MASK if is_secret_name(str(key)) else redact_value(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item, depth + 1) for item in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if hasattr(value, "get_secret_value"):
        return MASK
    return redact_text(repr(value))


def redact_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A log record's fields with secret-named ones masked and the rest searched by shape."""
    return {
        name: MASK if is_secret_name(name) else redact_value(value)
        for name, value in fields.items()
    }
