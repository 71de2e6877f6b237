"""EVM addresses: Keccak-256, address from a public key, EIP-55 checksums, BIP44 paths.

One address format serves every EVM chain (Ethereum, Polygon, BNB Chain ...); the chain is
chosen by the chain id of a transaction or payment URI, never by the address.

Invariants this module keeps:
- :func:`parse_evm_address` accepts ``0x`` + 40 hex digits that are all lower case or all
  upper case (unchecksummed, EIP-55) or mixed case matching the EIP-55 checksum exactly;
  a mixed-case mismatch is refused (it is how EIP-55 catches typos);
- addresses leave this module in EIP-55 form.
"""

from __future__ import annotations

from dataclasses import dataclass

from coincurve import PublicKey
from eth_hash.auto import keccak

from dpgnode.domain.custody.bip32 import HARDENED
from dpgnode.errors import ValidationError

_HEX = frozenset("0123456789abcdefABCDEF")
EVM_COIN_TYPE = 60
"""SLIP-44 coin type of Ether, used by every EVM chain's default derivation."""


def keccak256(data: bytes) -> bytes:
    """Keccak-256 as Ethereum uses it (the pre-standard padding, not SHA3-256)."""
    return keccak(data)


def checksum_encode(address: bytes) -> str:
    """EIP-55 text of a 20-byte address."""
    if len(address) != 20:
        raise ValidationError("an EVM address is 20 bytes", field="address")
    lower = address.hex()
    digest = keccak(lower.encode("ascii")).hex()
    # A hex letter is upper-cased when its nibble of the hash is >= 8; digits have no case.
    return "0x" + "".join(
        [c.upper() if h in "89abcdef" else c for c, h in zip(lower, digest, strict=False)]
    )


def evm_address_from_public_key(public_key: bytes) -> str:
    """EIP-55 address of a secp256k1 public key (33-byte compressed or 65-byte uncompressed).

    Raises:
        ValidationError: not a valid point.
    """
    if len(public_key) == 65 and public_key[0] == 4:
        uncompressed = public_key
    else:
        try:
            uncompressed = PublicKey(public_key).format(compressed=False)
        except (ValueError, TypeError):
            raise ValidationError("not a secp256k1 public key", field="public_key") from None
    return checksum_encode(keccak(uncompressed[1:])[-20:])


@dataclass(frozen=True, slots=True)
class EvmAddress:
    """A parsed 20-byte EVM address."""

    raw: bytes
    checksummed: bool
    """True when the input carried an EIP-55 checksum (mixed case) and it matched."""

    @property
    def text(self) -> str:
        """EIP-55 form."""
        return checksum_encode(self.raw)

    def __str__(self) -> str:
        return self.text


def parse_evm_address(text: str, *, field: str = "address") -> EvmAddress:
    """Validate an EVM address (EIP-55).

    Raises:
        ValidationError: not ``0x`` + 40 hex digits, or mixed case that does not match the
            EIP-55 checksum (the message says so: likely a typo).
    """
    if not isinstance(text, str) or len(text) != 42 or text[:2] not in ("0x", "0X"):
        raise ValidationError("an EVM address is 0x followed by 40 hex digits", field=field)
    digits = text[2:]
    if not _HEX.issuperset(digits):
        raise ValidationError("an EVM address is 0x followed by 40 hex digits", field=field)
    raw = bytes.fromhex(digits)
    if digits in (digits.lower(), digits.upper()):
        return EvmAddress(raw, checksummed=False)
    if checksum_encode(raw)[2:] != digits:
        raise ValidationError(
            "EIP-55 checksum mismatch: the mixed-case address has a typo", field=field
        )
    return EvmAddress(raw, checksummed=True)


def evm_account_path(account: int = 0) -> tuple[int, ...]:
    """BIP44 path of an EVM account node: ``m/44'/60'/account'`` (children ``0/i``)."""
    if type(account) is not int or not 0 <= account < HARDENED:
        raise ValidationError("account must be an integer in 0..2**31-1", field="account")
    return (44 + HARDENED, EVM_COIN_TYPE + HARDENED, account + HARDENED)


def evm_address_path(account: int, index: int) -> tuple[int, ...]:
    """BIP44 path of an EVM address: ``m/44'/60'/account'/0/index``."""
    if type(index) is not int or not 0 <= index < HARDENED:
        raise ValidationError("index must be an integer in 0..2**31-1", field="index")
    return (*evm_account_path(account), 0, index)
