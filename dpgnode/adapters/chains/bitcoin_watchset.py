"""The scriptPubKeys of every address the node issued: what a Bitcoin block is matched against.

A node that issues one address per invoice watches millions of them, all loaded at start from
its own database, so two costs matter:

- time to load: decoding an address with full checksum verification (``parse_address``)
  costs about 30 µs for bech32 in Python, 30 s per million. The addresses come from our own
  database, so the bech32 checksum is not re-verified: the data part is read with
  ``int(text, 32)`` after a ``bytes.translate`` (both C loops), under 2 µs. Base58 checksums
  (one SHA-256d) are verified: decoding base58 costs about 3 µs anyway. Everything else is
  still checked (network prefix, characters, witness version, program length, padding), so
  malformed input raises ``ValidationError`` naming ``address``;
- memory: only the scripts are held (a ``set[bytes]``, about 100 MB per million). The
  address text of a matched script is encoded again on demand (``address_from_script``):
  encodings are canonical, so that gives back the text the node issued. The rare text that
  is not canonical (upper-case bech32) is kept beside its script.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from dpgnode.domain.custody.addresses import address_from_script
from dpgnode.domain.custody.encoding import BECH32_CHARSET, sha256d
from dpgnode.domain.custody.networks import Network, network_params
from dpgnode.errors import ValidationError

_INVALID = b"!"
_BASE32 = b"0123456789abcdefghijklmnopqrstuv"
_BECH32_DIGITS = bytes(
    _BASE32[BECH32_CHARSET.index(chr(c).lower())] if chr(c).lower() in BECH32_CHARSET
    else _INVALID[0]
    for c in range(256)
)
"""bech32 character (either case) -> its value as a base-32 digit of ``int()``; else ``!``."""
_B58_ALPHABET = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INVALID_B58 = b"\xff"
_B58_DIGITS = bytes(_B58_ALPHABET.find(bytes([c])) % 256 for c in range(256))
"""base58 character -> its value (0..57); anything else -> 255."""
_CHECKSUM = 6
_WITNESS_PROGRAM_CHARS = {32: 20, 52: 32}
"""Length of a witness program in bech32 characters -> bytes (P2WPKH; P2WSH and P2TR)."""
_FIELD = "address"
_SEGWIT_PREFIXES = ("bc1", "tb1", "bcrt1")


class WatchedScripts(Mapping[bytes, str]):
    """scriptPubKey -> address text of every watched address of one network.

    Not thread-safe: one watcher thread adds and matches.
    """

    __slots__ = ("_b58", "_network", "_prefix", "_scripts", "_texts")

    def __init__(self, network: Network) -> None:
        params = network_params(network)
        self._network = network
        self._prefix = params.hrp + "1"
        self._b58 = {params.p2pkh_version: (b"\x76\xa9\x14", b"\x88\xac"),
                     params.p2sh_version: (b"\xa9\x14", b"\x87")}
        self._scripts: set[bytes] = set()
        self._texts: dict[bytes, str] = {}

    def add(self, addresses: Iterable[str]) -> int:
        """Watch ``addresses`` (idempotent); how many scripts were not watched before.

        Raises:
            ValidationError: an address that is malformed or of another network (field
                ``address``); the addresses before it are watched.
        """
        scripts, texts, prefix = self._scripts, self._texts, self._prefix
        before = len(scripts)
        for text in addresses:
            if not isinstance(text, str):
                raise ValidationError("an address is text", field=_FIELD)
            if text[: len(prefix)].lower() == prefix:
                script = self._segwit(text)
                if not text.islower():
                    texts[script] = text
            else:
                script = self._base58(text)
            scripts.add(script)
        return len(scripts) - before

    def _segwit(self, text: str) -> bytes:
        try:
            data = text[len(self._prefix) :].encode("ascii").translate(_BECH32_DIGITS)
        except UnicodeEncodeError:
            raise ValidationError("invalid bech32 character", field=_FIELD) from None
        size = _WITNESS_PROGRAM_CHARS.get(len(data) - 1 - _CHECKSUM)
        if size is None or _INVALID in data:
            raise ValidationError(f"not a witness address of {self._network}", field=_FIELD)
        version = int(data[:1], 32)
        if (version, size) not in ((0, 20), (0, 32), (1, 32)):
            raise ValidationError(f"witness version {version} with a {size}-byte program is "
                                  "not an address the node issues", field=_FIELD)
        program = data[1:-_CHECKSUM]
        number = int(program, 32)
        padding = len(program) * 5 - size * 8
        if number & ((1 << padding) - 1):
            raise ValidationError("non-zero bech32 padding", field=_FIELD)
        opcode = 0 if version == 0 else 0x50 + version
        return bytes((opcode, size)) + (number >> padding).to_bytes(size, "big")

    def _base58(self, text: str) -> bytes:
        if not 26 <= len(text) <= 35 or text[:5].lower().startswith(_SEGWIT_PREFIXES):
            raise ValidationError(f"not an address of {self._network}", field=_FIELD)
        try:
            digits = text.encode("ascii").translate(_B58_DIGITS)
        except UnicodeEncodeError:
            raise ValidationError("invalid base58 character", field=_FIELD) from None
        if _INVALID_B58 in digits:
            raise ValidationError("invalid base58 character", field=_FIELD)
        number = 0
        for digit in digits:
            number = number * 58 + digit
        if number >> 200:
            raise ValidationError("a base58 address carries 25 bytes", field=_FIELD)
        raw = number.to_bytes(25, "big")
        if sha256d(raw[:21])[:4] != raw[21:]:
            raise ValidationError("base58 checksum mismatch", field=_FIELD)
        if len(text) - len(text.lstrip("1")) != 25 - len(raw.lstrip(b"\0")):
            # Each leading "1" stands for one leading zero byte; any other count would not
            # be the text that encoding the script gives back.
            raise ValidationError("not a canonical base58 address", field=_FIELD)
        wrap = self._b58.get(raw[0])
        if wrap is None:
            raise ValidationError(f"address is not for {self._network}", field=_FIELD)
        return wrap[0] + raw[1:21] + wrap[1]

    def __contains__(self, script: object) -> bool:
        return script in self._scripts

    def __getitem__(self, script: bytes) -> str:
        if script not in self._scripts:
            raise KeyError(script)
        text = self._texts.get(script)
        if text is None:
            text = address_from_script(script, self._network)
            if text is None:  # pragma: no cover - add() stores only scripts with addresses
                raise KeyError(script)
        return text

    def __len__(self) -> int:
        return len(self._scripts)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._scripts)
