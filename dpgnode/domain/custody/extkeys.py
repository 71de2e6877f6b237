"""Watch-only accounts: an extended public key, an address type and branch paths.

Public surface:
- :func:`parse_account_key` (``xpub``/``ypub``/``zpub``/``tpub``/``upub``/``vpub`` text or an
  output descriptor) -> :class:`AccountKey`;
- :meth:`AccountKey.address`, :meth:`AccountKey.addresses` / :func:`derive_addresses`
  (the fast path: the branch node is derived once and cached, then each child costs one
  HMAC-SHA512, one libsecp256k1 point addition (two for P2TR) and the address encoding;
  see ``bip32.ChildPoints`` and ``addresses.TaprootTweak``);
- :meth:`AccountKey.public_key`, :meth:`AccountKey.script_pubkey`, :meth:`AccountKey.path`,
  :meth:`AccountKey.descriptor`, :meth:`AccountKey.key_text`; :class:`Branch`.

Invariants this module keeps:
- the fast path and :meth:`ExtendedPublicKey.child` compute the same keys (tests compare
  both, and both against hdwallet);
- a key whose SLIP-132 prefix announces an address type (``y``/``z``/``u``/``v``) is never
  used for another type: the wallet that exported it would not see payments to the other
  type. ``xpub``/``tpub`` default to P2PKH and accept any type the caller asks for;
- private keys are refused (see ``bip32.decode_extended_public_key``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

from dpgnode.domain.custody.addresses import (
    TaprootTweak,
    address_from_public_key,
    script_pubkey_from_public_key,
)
from dpgnode.domain.custody.bip32 import (
    HARDENED,
    ChildPoints,
    ExtendedPublicKey,
    Secp256k1Pubkey,
    decode_extended_public_key,
)
from dpgnode.domain.custody.descriptors import (
    KeyOrigin,
    parse_descriptor,
    render_descriptor,
)
from dpgnode.domain.custody.encoding import encode_segwit, hash160
from dpgnode.domain.custody.evm import checksum_encode, keccak256
from dpgnode.domain.custody.networks import (
    AddressType,
    Network,
    key_version_for,
    network_params,
    parse_network,
)
from dpgnode.errors import ValidationError

MAX_BATCH = 1_000_000
"""Most addresses one :func:`derive_addresses` call returns (bounds memory per request)."""


class Branch(IntEnum):
    """Conventional BIP44 branches: external (receive) and internal (change)."""

    RECEIVE = 0
    CHANGE = 1


@dataclass(frozen=True, slots=True)
class AccountKey:
    """A watch-only account: derives addresses, never signs.

    ``branches[b]`` is the path below ``key`` of branch ``b``: ``((0,), (1,))`` for a bare
    Bitcoin key (receive ``0/i``, change ``1/i``), ``((0,),)`` for an EVM key (BIP44
    ``m/44'/60'/a'/0/i``), and whatever a descriptor says (``/0/*`` gives one branch,
    ``/<0;1>/*`` two).
    """

    key: ExtendedPublicKey
    address_type: AddressType
    origin: KeyOrigin | None = None
    branches: tuple[tuple[int, ...], ...] = ((0,), (1,))

    @property
    def network(self) -> Network:
        """The Bitcoin network of the key (EVM addresses do not depend on it)."""
        return self.key.network

    def branch_path(self, branch: int) -> tuple[int, ...]:
        """Path below the account key of ``branch``.

        Raises:
            ValidationError: the account has no such branch.
        """
        if type(branch) not in (int, Branch) or not 0 <= branch < len(self.branches):
            raise ValidationError(
                f"this account has {len(self.branches)} branch(es)", field="branch"
            )
        return self.branches[branch]

    def public_key(self, branch: int, index: int) -> bytes:
        """33-byte compressed public key of address ``index`` on ``branch``."""
        _check_range(index, 1)
        return _branch_node(self.key, self.branch_path(branch)).child(index).public_key

    def address(self, branch: int, index: int) -> str:
        """Address ``index`` of ``branch`` (EIP-55 for EVM accounts)."""
        return derive_addresses(self, branch, index, 1)[0]

    def addresses(self, branch: int, start: int, count: int) -> list[str]:
        """Addresses ``start .. start+count-1`` of ``branch`` (see :func:`derive_addresses`)."""
        return derive_addresses(self, branch, start, count)

    def script_pubkey(self, branch: int, index: int) -> bytes:
        """The scriptPubKey a watcher matches for address ``index`` of ``branch`` (Bitcoin only)."""
        return script_pubkey_from_public_key(self.public_key(branch, index), self.address_type)

    def path(self, branch: int, index: int) -> tuple[int, ...] | None:
        """Full path from the master key (for the signer / PSBT), or None without an origin."""
        _check_range(index, 1)
        if self.origin is None:
            return None
        return (*self.origin.path, *self.branch_path(branch), index)

    def key_text(self) -> str:
        """The key serialized with the SLIP-132 prefix of its address type (zpub, vpub...)."""
        return self.key.serialize(key_version_for(self.network, self.address_type, private=False))

    def descriptor(self) -> str:
        """Checksummed output descriptor of the account (multipath when it has two branches).

        Raises:
            ValidationError: EVM accounts have no descriptor.
        """
        return render_descriptor(
            self.address_type, self.origin, self.key.serialize(), self.branches
        )


def parse_account_key(
    text: str,
    network: Network | None = None,
    address_type: AddressType | None = None,
    *,
    field: str = "xpub",
) -> AccountKey:
    """A watch-only account from an extended public key or an output descriptor.

    Args:
        text: ``xpub``/``ypub``/``zpub``/``tpub``/``upub``/``vpub`` text, or a descriptor
            such as ``wpkh([d34db33f/84h/0h/0h]xpub.../<0;1>/*)#checksum``.
        network: the network the key must belong to; None takes mainnet for x/y/z keys and
            testnet for t/u/v keys (signet and regtest must be asked for).
        address_type: None uses the type the prefix or descriptor implies; ``EVM`` makes
            an EVM account from a BIP44 ``m/44'/60'/a'`` key.
        field: the input field named in errors.

    Raises:
        ValidationError: anything wrong with the key or descriptor, a private key, a
            network mismatch, or an address type the key or descriptor contradicts.
    """
    if not isinstance(text, str):
        raise ValidationError("account key must be a string", field=field)
    if network is not None:
        network = parse_network(network, field="network")
    if address_type is not None:
        address_type = _address_type(address_type)
    text = text.strip()
    if "(" in text:
        return _from_descriptor(text, network, address_type, field)
    key, version = decode_extended_public_key(text, network=network, field=field)
    if version.multisig:
        raise ValidationError(
            f"{version.prefix} is a multisig key; only single-key accounts are supported",
            field=field,
        )
    implied = version.address_type
    if address_type is None:
        address_type = implied
    elif address_type is not implied and version.prefix[0] not in "xt":
        raise ValidationError(
            f"a {version.prefix} announces {implied.value} addresses; export an "
            f"{'xpub' if not version.test else 'tpub'} to use {address_type.value}",
            field=field,
        )
    branches = ((0,),) if address_type is AddressType.EVM else ((0,), (1,))
    return AccountKey(key, address_type, None, branches)


def _address_type(value: str) -> AddressType:
    """Accept the enum or its value (``"p2wpkh"``), as config files and APIs carry strings."""
    try:
        return AddressType(value)
    except ValueError:
        raise ValidationError(
            f"unknown address type; expected one of {', '.join(t.value for t in AddressType)}",
            field="address_type",
        ) from None


def _from_descriptor(
    text: str, network: Network | None, address_type: AddressType | None, field: str
) -> AccountKey:
    parsed = parse_descriptor(text, field=field)
    if address_type is not None and address_type is not parsed.address_type:
        raise ValidationError(
            f"descriptor describes {parsed.address_type.value} addresses, not {address_type.value}",
            field=field,
        )
    if parsed.key_text[:4] not in ("xpub", "tpub"):
        if parsed.key_text[1:4] == "prv" or len(parsed.key_text) in (51, 52):
            raise ValidationError(
                "descriptor holds a private key; it has not been kept. Use the "
                "account's public descriptor",
                field=field,
            )
        raise ValidationError(
            "descriptor key must be an xpub or tpub with a /* range (BIP380)", field=field
        )
    key, _ = decode_extended_public_key(parsed.key_text, network=network, field=field)
    return AccountKey(key, parsed.address_type, parsed.origin, parsed.branches)


@lru_cache(maxsize=4096)
def _branch_node(key: ExtendedPublicKey, path: tuple[int, ...]) -> ExtendedPublicKey:
    """The branch node below an account key; cached so each address costs one CKDpub."""
    return key.derive_path(path)


def _check_range(start: int, count: int) -> None:
    if type(start) is not int or not 0 <= start < HARDENED:
        raise ValidationError("index must be an integer in 0..2**31-1", field="index")
    if type(count) is not int or not 0 <= count <= MAX_BATCH or start + count > HARDENED:
        raise ValidationError(
            f"count must be 0..{MAX_BATCH} and stay below index 2**31", field="count"
        )


def _encoder(
    points: ChildPoints, address_type: AddressType, network: Network
) -> Callable[[Secp256k1Pubkey], str]:
    """A closure turning a child point into address text, without re-parsing the point."""
    if address_type is AddressType.EVM:
        uncompressed = points.uncompressed
        return lambda point: checksum_encode(keccak256(uncompressed(point)[1:])[-20:])
    hrp = network_params(network).hrp
    compressed = points.compressed
    if address_type is AddressType.P2WPKH:
        return lambda point: encode_segwit(hrp, 0, hash160(compressed(point)))
    if address_type is AddressType.P2TR:
        tweak = TaprootTweak()
        return lambda point: encode_segwit(hrp, 1, tweak(point))
    return lambda point: address_from_public_key(compressed(point), address_type, network)


def derive_addresses(key: AccountKey, branch: int, start: int, count: int) -> list[str]:
    """Addresses ``start .. start+count-1`` of ``branch``, in index order.

    Raises:
        ValidationError: a branch the account lacks, indices outside ``0..2**31-1``, a
            count above :data:`MAX_BATCH`, or (probability 2**-127 per index) an index whose
            key is invalid under BIP32.
    """
    _check_range(start, count)
    points = ChildPoints(_branch_node(key.key, key.branch_path(branch)))
    encode = _encoder(points, key.address_type, key.network)
    point = points.point
    return [encode(point(index)) for index in range(start, start + count)]
