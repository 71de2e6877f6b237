"""EVM transactions: EIP-1559 (type 2) fields, ERC-20 ``transfer`` calldata, signing hash, raw form.

Pure. The signer signs :meth:`Eip1559Transaction.signing_hash` (a keccak-256 digest) and
:meth:`Eip1559Transaction.encode_signed` turns its ``(y_parity, r, s)`` into the raw
transaction ``eth_sendRawTransaction`` takes. One format serves every EVM chain; the chain is
the ``chain_id`` the signature commits to (EIP-155 replay protection is built into type 2).

Invariants this module keeps:

- every integer field is a non-negative integer that fits its EVM width (uint64 for nonce and
  gas, uint256 for values and fees); never a float;
- ``max_priority_fee_per_gas <= max_fee_per_gas`` (EIP-1559 rejects the opposite);
- the destination is 20 bytes and never the zero address (value sent there is burnt);
- the access list is always empty: plain transfers gain nothing from one.

RLP is written out here (below) rather than imported: it is a dozen lines for byte strings,
integers and lists, pinned to the ``rlp`` package by a property test, and it keeps the domain's
dependency allow-list short.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dpgnode.domain.custody.bip32 import CURVE_ORDER
from dpgnode.domain.custody.evm import keccak256
from dpgnode.errors import ValidationError

TX_TYPE_EIP1559 = 0x02
UINT64_MAX = 2**64 - 1
UINT256_MAX = 2**256 - 1
NATIVE_TRANSFER_GAS = 21_000
"""Gas of a plain value transfer to an account without code (the intrinsic cost)."""
MAX_GAS = 30_000_000
"""A transaction cannot use more gas than a block holds (30M on Ethereum mainnet today)."""
ERC20_TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")
"""First four bytes of ``keccak256("transfer(address,uint256)")``."""
ZERO_ADDRESS = bytes(20)
_SECP256K1_HALF_N = CURVE_ORDER // 2

RlpItem = bytes | int | Sequence["RlpItem"]


def rlp_encode(item: RlpItem) -> bytes:
    """Recursive-length-prefix encoding of byte strings, non-negative integers and lists.

    Integers are encoded as their minimal big-endian bytes (zero as the empty string), as
    Ethereum's transaction fields require.
    """
    if isinstance(item, int):
        if item < 0:
            raise ValidationError("RLP integers are non-negative", field="rlp")
        item = item.to_bytes((item.bit_length() + 7) // 8, "big")
    if isinstance(item, bytes):
        if len(item) == 1 and item[0] < 0x80:
            return item
        return _rlp_length(len(item), 0x80) + item
    payload = b"".join(rlp_encode(element) for element in item)
    return _rlp_length(len(payload), 0xC0) + payload


def _rlp_length(length: int, offset: int) -> bytes:
    if length <= 55:
        return bytes([offset + length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(encoded)]) + encoded


def _check_uint(value: int, maximum: int, name: str) -> None:
    if type(value) is not int or not 0 <= value <= maximum:
        raise ValidationError(f"{name} must be an integer in 0..{maximum}", field=name)


def _check_destination(address: bytes, name: str) -> None:
    if not isinstance(address, bytes) or len(address) != 20:
        raise ValidationError(f"{name} must be a 20-byte address", field=name)
    if address == ZERO_ADDRESS:
        raise ValidationError(f"{name} is the zero address (funds would be burnt)", field=name)


@dataclass(frozen=True, slots=True)
class Eip1559Transaction:
    """An unsigned type-2 transaction.

    Attributes:
        chain_id: The chain (1 Ethereum, 137 Polygon, 56 BNB Chain, 31337 anvil ...).
        nonce: The sender's next nonce.
        max_priority_fee_per_gas: Tip per gas to the block producer, in wei.
        max_fee_per_gas: Most the sender pays per gas (base fee + tip), in wei.
        gas: Gas limit.
        to: Recipient (native transfer) or token contract (ERC-20 transfer), 20 bytes.
        value_wei: Native value sent.
        data: Calldata (empty for a native transfer).
    """

    chain_id: int
    nonce: int
    max_priority_fee_per_gas: int
    max_fee_per_gas: int
    gas: int
    to: bytes
    value_wei: int
    data: bytes = b""

    def __post_init__(self) -> None:
        if type(self.chain_id) is not int or not 1 <= self.chain_id <= UINT64_MAX:
            raise ValidationError("chain id must be a positive 64-bit integer", field="chain_id")
        _check_uint(self.nonce, UINT64_MAX - 1, "nonce")  # EIP-2681: nonce < 2**64 - 1
        _check_uint(self.max_priority_fee_per_gas, UINT256_MAX, "max_priority_fee_per_gas")
        _check_uint(self.max_fee_per_gas, UINT256_MAX, "max_fee_per_gas")
        if self.max_priority_fee_per_gas > self.max_fee_per_gas:
            raise ValidationError(
                "max priority fee exceeds the max fee per gas", field="max_priority_fee_per_gas"
            )
        _check_uint(self.gas, MAX_GAS, "gas")
        if self.gas < NATIVE_TRANSFER_GAS:
            raise ValidationError("gas is below the 21000 intrinsic cost", field="gas")
        _check_destination(self.to, "to")
        _check_uint(self.value_wei, UINT256_MAX, "value")
        if not isinstance(self.data, bytes):
            raise ValidationError("data must be bytes", field="data")

    def max_cost_wei(self) -> int:
        """The most the sender's balance can lose: ``gas * max_fee_per_gas + value``."""
        return self.gas * self.max_fee_per_gas + self.value_wei

    def _fields(self) -> list[RlpItem]:
        return [
            self.chain_id,
            self.nonce,
            self.max_priority_fee_per_gas,
            self.max_fee_per_gas,
            self.gas,
            self.to,
            self.value_wei,
            self.data,
            [],  # access list
        ]

    def signing_payload(self) -> bytes:
        """``0x02 || rlp([chain_id, nonce, tip, max_fee, gas, to, value, data, []])``."""
        return bytes([TX_TYPE_EIP1559]) + rlp_encode(self._fields())

    def signing_hash(self) -> bytes:
        """The 32-byte digest the sender's key signs: keccak-256 of :meth:`signing_payload`."""
        return keccak256(self.signing_payload())

    def encode_signed(self, y_parity: int, r: int, s: int) -> bytes:
        """The raw signed transaction: the payload's fields followed by the signature.

        Args:
            y_parity: The recovery id (0 or 1) of the low-S signature.
            r: Signature ``r``.
            s: Signature ``s``, low-S (EIP-2: nodes refuse high S).
        """
        if y_parity not in (0, 1):
            raise ValidationError("y parity must be 0 or 1", field="y_parity")
        _check_uint(r, UINT256_MAX, "r")
        _check_uint(s, UINT256_MAX, "s")
        if r == 0 or s == 0:
            raise ValidationError("signature values must be non-zero", field="signature")
        if s > _SECP256K1_HALF_N:
            raise ValidationError("signature s is not low-S (EIP-2)", field="signature")
        return bytes([TX_TYPE_EIP1559]) + rlp_encode([*self._fields(), y_parity, r, s])


def transaction_hash(raw: bytes) -> str:
    """The transaction hash nodes report for a raw signed transaction (``0x`` + 64 hex)."""
    return "0x" + keccak256(raw).hex()


def erc20_transfer_data(recipient: bytes, units: int) -> bytes:
    """Calldata of ``transfer(address recipient, uint256 units)`` (ABI-encoded).

    Raises:
        ValidationError: ``recipient`` is not 20 bytes or is the zero address; ``units`` is
            not a positive uint256.
    """
    _check_destination(recipient, "recipient")
    _check_uint(units, UINT256_MAX, "amount")
    if units == 0:
        raise ValidationError("a transfer moves a positive amount", field="amount")
    return ERC20_TRANSFER_SELECTOR + bytes(12) + recipient + units.to_bytes(32, "big")


def native_transfer(
    *,
    chain_id: int,
    nonce: int,
    to: bytes,
    value_wei: int,
    max_priority_fee_per_gas: int,
    max_fee_per_gas: int,
    gas: int = NATIVE_TRANSFER_GAS,
) -> Eip1559Transaction:
    """A transfer of the chain's native coin (21000 gas to an account without code).

    Raises:
        ValidationError: a zero or out-of-range value, or any invalid field.
    """
    if type(value_wei) is not int or value_wei <= 0:
        raise ValidationError("a transfer moves a positive amount", field="amount")
    return Eip1559Transaction(
        chain_id, nonce, max_priority_fee_per_gas, max_fee_per_gas, gas, to, value_wei
    )


def erc20_transfer(
    *,
    chain_id: int,
    nonce: int,
    token: bytes,
    recipient: bytes,
    units: int,
    max_priority_fee_per_gas: int,
    max_fee_per_gas: int,
    gas: int,
) -> Eip1559Transaction:
    """A call of ``token.transfer(recipient, units)`` with no native value.

    ``gas`` is the caller's: estimate it against the chain (``eth_estimateGas``) and add a
    margin; token contracts differ too much for a constant.

    Raises:
        ValidationError: invalid token, recipient, amount or fee fields; the recipient is the
            token contract itself (tokens sent there are usually lost).
    """
    if recipient == token:
        raise ValidationError(
            "recipient is the token contract itself (tokens would be lost)", field="recipient"
        )
    data = erc20_transfer_data(recipient, units)
    return Eip1559Transaction(
        chain_id, nonce, max_priority_fee_per_gas, max_fee_per_gas, gas, token, 0, data
    )
