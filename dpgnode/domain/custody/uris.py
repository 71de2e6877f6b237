"""Payment URIs: BIP21 (``bitcoin:``) and EIP-681 (``ethereum:``), built and parsed exactly.

Public surface: :func:`bip21_uri`, :func:`parse_bip21` -> :class:`Bip21Request`;
:func:`eip681_uri` (native coin), :func:`eip681_transfer_uri` (ERC-20 ``transfer``),
:func:`parse_eip681` -> :class:`Eip681Request`.

Invariants this module keeps:
- amounts never pass through a float: BIP21 ``amount`` is a decimal BTC string made from
  and parsed back to integer satoshi; EIP-681 numbers (``value``, ``uint256``, including the
  ``2.014e18`` scientific form) are evaluated exactly and must come out as non-negative
  integers below 2**256;
- a BIP21 ``req-`` parameter this module does not understand refuses the URI (BIP21); an
  EIP-681 parameter it does not understand refuses it too (a payment must not silently lose
  a condition);
- any input either parses or raises :class:`~dpgnode.errors.ValidationError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from dpgnode.domain.custody.addresses import BitcoinAddress, parse_address
from dpgnode.domain.custody.evm import EvmAddress, parse_evm_address
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.money import Amount, Asset, AssetKind, format_units, parse_units
from dpgnode.errors import ValidationError

MAX_URI_LENGTH = 4096
UINT256_MAX = 2**256 - 1
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEXDIGITS = frozenset("0123456789abcdefABCDEF")
_BIP21_AMOUNT = re.compile(r"(?=\.?[0-9])[0-9]*(?:\.[0-9]*)?")
_NUMBER = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]+))?(?:[eE]([0-9]*))?")
_BTC_DECIMALS = 8
_WEI_DECIMALS = 18

BITCOIN = Asset("BTC", _BTC_DECIMALS, "Bitcoin", AssetKind.CRYPTO, "bitcoin")
"""The asset BIP21 amounts are denominated in (1 BTC = 10**8 satoshi)."""


def _utf8(text: str, field: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form
        raise ValidationError("text is not valid Unicode", field=field) from None


def percent_encode(text: str, *, field: str = "text") -> str:
    """RFC 3986 percent-encoding of UTF-8 ``text``; only unreserved characters stay bare.

    Raises:
        ValidationError: ``text`` holds a lone surrogate (no UTF-8 form).
    """
    return "".join(chr(b) if chr(b) in _UNRESERVED else f"%{b:02X}" for b in _utf8(text, field))


def percent_decode(text: str, *, field: str) -> str:
    """Inverse of :func:`percent_encode` (any ``%XX`` form; the result must be UTF-8).

    Raises:
        ValidationError: a ``%`` not followed by two hex digits, or bytes that are not UTF-8.
    """
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or not _HEXDIGITS.issuperset(pair):
                raise ValidationError("malformed percent-encoding", field=field)
            out.append(int(pair, 16))
            i += 3
        else:
            out.extend(_utf8(char, field))
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("percent-encoded text is not UTF-8", field=field) from None


def _split_query(query: str, *, field: str) -> dict[str, str]:
    """``k=v&k2=v2`` -> raw (still encoded) values; duplicate keys are refused."""
    params: dict[str, str] = {}
    for part in query.split("&"):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ValidationError("URI parameter without a name or value", field=field)
        key = percent_decode(key, field=field)
        if key in params:
            raise ValidationError("URI parameter given twice", field=field)
        params[key] = value
    return params


def _strip_scheme(text: str, scheme: str, field: str) -> str:
    if not isinstance(text, str) or len(text) > MAX_URI_LENGTH:
        raise ValidationError("URI too long or not a string", field=field)
    text = text.strip()
    if text[: len(scheme) + 1].lower() != scheme + ":":
        raise ValidationError(f"not a {scheme}: URI", field=field)
    return text[len(scheme) + 1 :]


# -- BIP21 ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bip21Request:
    """A parsed ``bitcoin:`` payment request."""

    address: BitcoinAddress
    amount: Amount | None = None
    label: str | None = None
    message: str | None = None
    extra: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Other optional parameters (decoded), e.g. ``lightning``; never ``req-`` ones."""


def _btc_decimal(units: int) -> str:
    """``0.001`` for 100_000 sat: exact, no trailing zeros (BIP21 amounts are plain decimals)."""
    text = format_units(units, _BTC_DECIMALS).rstrip("0")
    return text.rstrip(".")


def _bip21_sats(text: str) -> int:
    """Satoshi of a BIP21 amount (``*digit ["." *digit]``, so ``1.`` and ``.5`` too)."""
    if not _BIP21_AMOUNT.fullmatch(text):
        raise ValidationError("BIP21 amount must be a plain decimal number of BTC", field="amount")
    whole, _, frac = text.partition(".")
    units = parse_units(f"{whole or '0'}.{frac or '0'}", _BTC_DECIMALS, field="amount")
    if units <= 0:
        raise ValidationError("BIP21 amount must be positive", field="amount")
    return units


def bip21_uri(
    address: str,
    network: Network,
    *,
    amount: Amount | None = None,
    label: str | None = None,
    message: str | None = None,
) -> str:
    """``bitcoin:ADDR?amount=0.001&label=..&message=..`` for a validated address.

    Raises:
        ValidationError: an address that is not valid on ``network``; an amount that is
            not positive or not in an 8-decimal asset (satoshi).
    """
    parsed = parse_address(address, network)
    params: list[str] = []
    if amount is not None:
        if amount.asset.decimals != _BTC_DECIMALS or amount.units <= 0:
            raise ValidationError("BIP21 amount must be a positive BTC amount", field="amount")
        params.append(f"amount={_btc_decimal(amount.units)}")
    if label:
        params.append(f"label={percent_encode(label, field='label')}")
    if message:
        params.append(f"message={percent_encode(message, field='message')}")
    return f"bitcoin:{parsed.text}" + (f"?{'&'.join(params)}" if params else "")


def parse_bip21(
    text: str, network: Network, *, asset: Asset = BITCOIN, field: str = "uri"
) -> Bip21Request:
    """Parse a ``bitcoin:`` URI; the amount comes back as exact satoshi of ``asset``.

    Raises:
        ValidationError: not a bitcoin URI, an invalid address or one of another network,
            a malformed or non-positive amount (scientific notation and commas are refused),
            a duplicate parameter, or a ``req-`` parameter this parser does not understand.
    """
    rest = _strip_scheme(text, "bitcoin", field)
    address_text, _, query = rest.partition("?")
    address = parse_address(address_text, network, field=field)
    params = _split_query(query, field=field)
    amount: Amount | None = None
    label = message = None
    extra: dict[str, str] = {}
    seen: set[str] = set()
    for key, raw in params.items():
        lowered = key.lower()
        if lowered in seen:
            raise ValidationError("URI parameter given twice", field=field)
        seen.add(lowered)
        if lowered == "amount":
            amount = Amount(_bip21_sats(percent_decode(raw, field="amount")), asset)
        elif lowered == "label":
            label = percent_decode(raw, field="label")
        elif lowered == "message":
            message = percent_decode(raw, field="message")
        elif lowered.startswith("req-"):
            raise ValidationError(
                "the URI requires a parameter this node does not understand (BIP21 req-)",
                field=field,
                details={"parameter": key[:40]},
            )
        else:
            extra[key] = percent_decode(raw, field=field)
    return Bip21Request(address, amount, label, message, MappingProxyType(extra))


# -- EIP-681 -------------------------------------------------------------------------------


def parse_eip681_number(text: str, *, field: str = "value") -> int:
    """An EIP-681 number (``1000``, ``2.014e18``, ``1e3``) as an exact non-negative integer.

    Raises:
        ValidationError: malformed, negative, fractional after scaling, or above 2**256-1.
    """
    match = _NUMBER.fullmatch(text) if len(text) <= 100 else None
    if match is None or not (match[2] or match[3]):
        raise ValidationError("not an EIP-681 number", field=field)
    sign, whole, frac, exponent = match[1], match[2] or "0", match[3] or "", match[4] or "0"
    if int(exponent) > 78:
        raise ValidationError("number above 2**256-1", field=field)
    shift = int(exponent) - len(frac)
    mantissa = int(whole + frac)
    value: int
    if shift >= 0:
        value = mantissa * 10**shift
    else:
        scale: int = 10 ** (-shift)
        value, remainder = divmod(mantissa, scale)
        if remainder:
            raise ValidationError("amount must be a whole number of base units", field=field)
    if sign == "-" and value:
        raise ValidationError("amount must not be negative", field=field)
    if value > UINT256_MAX:
        raise ValidationError("number above 2**256-1", field=field)
    return value


@dataclass(frozen=True, slots=True)
class Eip681Request:
    """A parsed ``ethereum:`` payment request: a native transfer or an ERC-20 ``transfer``."""

    target: EvmAddress
    """The payee of a native transfer; the token contract of an ERC-20 transfer."""
    chain_id: int | None
    """None when the URI names no chain (EIP-681: the wallet's current chain)."""
    function: str | None = None
    recipient: EvmAddress | None = None
    """ERC-20 recipient (the ``address`` parameter of ``transfer``)."""
    value: int | None = None
    """Native amount in wei."""
    token_units: int | None = None
    """ERC-20 amount in the token's base units (``uint256`` parameter)."""
    gas_limit: int | None = None
    gas_price: int | None = None

    @property
    def payee(self) -> EvmAddress:
        """Who receives the funds: ``recipient`` for a token transfer, else ``target``."""
        return self.recipient if self.recipient is not None else self.target

    def amount(self, asset: Asset) -> Amount | None:
        """The requested amount as ``asset`` (wei of the native coin, or token units)."""
        units = self.token_units if self.function == "transfer" else self.value
        return None if units is None else Amount(units, asset)


def _chain_id(chain_id: int) -> int:
    if type(chain_id) is not int or not 0 < chain_id <= UINT256_MAX:
        raise ValidationError("chain id must be a positive integer", field="chain_id")
    return chain_id


def eip681_uri(address: str, chain_id: int, *, value: Amount | None = None) -> str:
    """``ethereum:0xADDR@CHAINID?value=WEI`` paying the chain's native coin.

    Raises:
        ValidationError: an invalid address or chain id, or a value that is not in an
            18-decimal native coin (wei).
    """
    target = parse_evm_address(address)
    uri = f"ethereum:{target.text}@{_chain_id(chain_id)}"
    if value is None:
        return uri
    if value.asset.decimals != _WEI_DECIMALS or value.asset.kind is AssetKind.TOKEN:
        raise ValidationError("value must be an amount of a native EVM coin", field="value")
    if value.units <= 0:
        raise ValidationError("value must be positive", field="value")
    return f"{uri}?value={value.units}"


def eip681_transfer_uri(token: str, chain_id: int, recipient: str, amount: Amount) -> str:
    """``ethereum:0xTOKEN@CHAINID/transfer?address=0xTO&uint256=UNITS`` (ERC-20).

    Raises:
        ValidationError: an invalid token or recipient address or chain id, or a
            non-positive amount.
    """
    token_address = parse_evm_address(token, field="token")
    to = parse_evm_address(recipient, field="recipient")
    if amount.units <= 0:
        raise ValidationError("amount must be positive", field="amount")
    return (
        f"ethereum:{token_address.text}@{_chain_id(chain_id)}/transfer"
        f"?address={to.text}&uint256={amount.units}"
    )


def parse_eip681(text: str, *, field: str = "uri") -> Eip681Request:
    """Parse an ``ethereum:`` URI (native transfer or ERC-20 ``transfer``).

    ENS names are refused (resolving one is I/O and a trust decision the caller makes).

    Raises:
        ValidationError: not an ethereum URI, an invalid address or chain id, a function
            other than ``transfer``, a missing or unknown parameter, or a bad number.
    """
    rest = _strip_scheme(text, "ethereum", field)
    rest = rest.removeprefix("pay-")
    head, _, query = rest.partition("?")
    head, _, function = head.partition("/")
    address_text, at, chain_text = head.partition("@")
    target = parse_evm_address(address_text, field=field)
    chain_id = None
    if at:
        if not chain_text.isascii() or not chain_text.isdigit() or len(chain_text) > 78:
            raise ValidationError("chain id must be a positive integer", field="chain_id")
        chain_id = _chain_id(int(chain_text))
    raw_params = _split_query(query, field=field)
    params = {k: percent_decode(v, field=field) for k, v in raw_params.items()}
    gas_limit = _optional_number(params, ("gas", "gasLimit"))
    gas_price = _optional_number(params, ("gasPrice",))
    if not function:
        value = _optional_number(params, ("value",))
        _refuse_unknown(params, field)
        return Eip681Request(target, chain_id, None, None, value, None, gas_limit, gas_price)
    if function != "transfer":
        raise ValidationError("only the ERC-20 transfer function is supported", field=field)
    if "address" not in params or "uint256" not in params:
        raise ValidationError("an ERC-20 transfer needs address and uint256", field=field)
    recipient = parse_evm_address(params.pop("address"), field="recipient")
    units = parse_eip681_number(params.pop("uint256"), field="uint256")
    if _optional_number(params, ("value",)):
        raise ValidationError("an ERC-20 transfer must not send ether", field="value")
    _refuse_unknown(params, field)
    return Eip681Request(target, chain_id, "transfer", recipient, None, units, gas_limit, gas_price)


def _optional_number(params: dict[str, str], names: tuple[str, ...]) -> int | None:
    found = [name for name in names if name in params]
    if len(found) > 1:
        raise ValidationError(f"give only one of {', '.join(names)}", field=found[0])
    return parse_eip681_number(params.pop(found[0]), field=found[0]) if found else None


def _refuse_unknown(params: dict[str, str], field: str) -> None:
    if params:
        raise ValidationError(
            "the URI has a parameter this node does not understand",
            field=field,
            details={"parameter": next(iter(params))[:40]},
        )
