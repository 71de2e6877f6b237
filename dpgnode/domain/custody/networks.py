"""Bitcoin networks, address types and extended-key version bytes (BIP32, SLIP-132).

Invariants this module keeps:
- every network has exactly one bech32 human-readable part and one pair of base58 versions;
  testnet, signet and regtest share base58 versions and extended-key versions (they differ
  only in the bech32 hrp of regtest), so a ``tpub`` alone cannot tell them apart: callers
  that care pass the network they expect;
- every known extended-key version maps to one :class:`KeyVersion` that says whether it is
  private (never acceptable where a watch-only key is expected), which network family it
  belongs to and which address type its prefix implies (SLIP-132: x/t -> P2PKH,
  y/u -> P2SH-P2WPKH, z/v -> P2WPKH).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from dpgnode.errors import ValidationError


class Network(StrEnum):
    """A Bitcoin network."""

    MAINNET = "mainnet"
    TESTNET = "testnet"
    SIGNET = "signet"
    REGTEST = "regtest"

    @property
    def is_test(self) -> bool:
        """True for every network whose coins have no value (test family of version bytes)."""
        return self is not Network.MAINNET


class AddressType(StrEnum):
    """How a derived public key becomes a receiving address.

    ``EVM`` is the Ethereum-style address (Keccak-256 of the uncompressed key) shared by every
    EVM chain; the other four are Bitcoin output types.
    """

    P2PKH = "p2pkh"
    P2SH_P2WPKH = "p2sh-p2wpkh"
    P2WPKH = "p2wpkh"
    P2TR = "p2tr"
    EVM = "evm"


@dataclass(frozen=True, slots=True)
class NetworkParams:
    """Encoding constants of one Bitcoin network."""

    network: Network
    hrp: str
    """bech32 / bech32m human-readable part (BIP173)."""
    p2pkh_version: int
    p2sh_version: int
    wif_version: int
    coin_type: int
    """BIP44 coin type used in ``m/purpose'/coin'/account'`` (0 mainnet, 1 every test network)."""


_PARAMS: Mapping[Network, NetworkParams] = MappingProxyType(
    {
        Network.MAINNET: NetworkParams(Network.MAINNET, "bc", 0x00, 0x05, 0x80, 0),
        Network.TESTNET: NetworkParams(Network.TESTNET, "tb", 0x6F, 0xC4, 0xEF, 1),
        Network.SIGNET: NetworkParams(Network.SIGNET, "tb", 0x6F, 0xC4, 0xEF, 1),
        Network.REGTEST: NetworkParams(Network.REGTEST, "bcrt", 0x6F, 0xC4, 0xEF, 1),
    }
)


def network_params(network: Network) -> NetworkParams:
    """The encoding constants of ``network``."""
    return _PARAMS[network]


def parse_network(text: str, *, field: str = "network") -> Network:
    """The :class:`Network` named ``text`` (``mainnet``, ``testnet``, ``signet``, ``regtest``).

    ``main``, ``test`` and ``bitcoin`` are accepted as the names Bitcoin Core and config
    files use.

    Raises:
        ValidationError: an unknown name.
    """
    if isinstance(text, Network):
        return text
    aliases = {"main": "mainnet", "bitcoin": "mainnet", "test": "testnet", "testnet3": "testnet"}
    name = aliases.get(text.strip().lower(), text.strip().lower()) if isinstance(text, str) else ""
    try:
        return Network(name)
    except ValueError:
        raise ValidationError(
            "unknown network; expected mainnet, testnet, signet or regtest", field=field
        ) from None


@dataclass(frozen=True, slots=True)
class KeyVersion:
    """The four version bytes that open a serialized extended key, and what they imply."""

    prefix: str
    """The base58 prefix the version produces (``xpub``, ``zprv``, ``Zpub`` ...)."""
    version: int
    private: bool
    test: bool
    """True for the test family (testnet, signet, regtest), False for mainnet."""
    address_type: AddressType
    """The address type the prefix implies when the caller does not ask for another."""
    multisig: bool = False
    """SLIP-132 multisig prefixes (``Ypub``/``Zpub``...): recognised only to refuse them clearly."""


_VERSIONS: tuple[KeyVersion, ...] = (
    KeyVersion("xpub", 0x0488B21E, False, False, AddressType.P2PKH),
    KeyVersion("xprv", 0x0488ADE4, True, False, AddressType.P2PKH),
    KeyVersion("ypub", 0x049D7CB2, False, False, AddressType.P2SH_P2WPKH),
    KeyVersion("yprv", 0x049D7878, True, False, AddressType.P2SH_P2WPKH),
    KeyVersion("zpub", 0x04B24746, False, False, AddressType.P2WPKH),
    KeyVersion("zprv", 0x04B2430C, True, False, AddressType.P2WPKH),
    KeyVersion("tpub", 0x043587CF, False, True, AddressType.P2PKH),
    KeyVersion("tprv", 0x04358394, True, True, AddressType.P2PKH),
    KeyVersion("upub", 0x044A5262, False, True, AddressType.P2SH_P2WPKH),
    KeyVersion("uprv", 0x044A4E28, True, True, AddressType.P2SH_P2WPKH),
    KeyVersion("vpub", 0x045F1CF6, False, True, AddressType.P2WPKH),
    KeyVersion("vprv", 0x045F18BC, True, True, AddressType.P2WPKH),
    KeyVersion("Ypub", 0x0295B43F, False, False, AddressType.P2SH_P2WPKH, multisig=True),
    KeyVersion("Yprv", 0x0295B005, True, False, AddressType.P2SH_P2WPKH, multisig=True),
    KeyVersion("Zpub", 0x02AA7ED3, False, False, AddressType.P2WPKH, multisig=True),
    KeyVersion("Zprv", 0x02AA7A99, True, False, AddressType.P2WPKH, multisig=True),
    KeyVersion("Upub", 0x024289EF, False, True, AddressType.P2SH_P2WPKH, multisig=True),
    KeyVersion("Uprv", 0x024285B5, True, True, AddressType.P2SH_P2WPKH, multisig=True),
    KeyVersion("Vpub", 0x02575483, False, True, AddressType.P2WPKH, multisig=True),
    KeyVersion("Vprv", 0x02575048, True, True, AddressType.P2WPKH, multisig=True),
)
KEY_VERSIONS_BY_INT: Mapping[int, KeyVersion] = MappingProxyType({v.version: v for v in _VERSIONS})
KEY_VERSIONS_BY_PREFIX: Mapping[str, KeyVersion] = MappingProxyType(
    {v.prefix: v for v in _VERSIONS}
)


def key_version(prefix: str, *, field: str = "version") -> KeyVersion:
    """The :class:`KeyVersion` whose base58 prefix is ``prefix`` (``"zpub"``, ``"tprv"`` ...).

    Raises:
        ValidationError: not a known single-key or multisig SLIP-132 prefix.
    """
    version = KEY_VERSIONS_BY_PREFIX.get(prefix)
    if version is None:
        raise ValidationError("unknown extended key version", field=field)
    return version


def default_key_version(network: Network, *, private: bool) -> KeyVersion:
    """``xpub``/``xprv`` on mainnet, ``tpub``/``tprv`` on the test networks."""
    if network.is_test:
        return KEY_VERSIONS_BY_PREFIX["tprv" if private else "tpub"]
    return KEY_VERSIONS_BY_PREFIX["xprv" if private else "xpub"]


def key_version_for(network: Network, address_type: AddressType, *, private: bool) -> KeyVersion:
    """The SLIP-132 version that announces ``address_type`` on ``network``.

    P2TR and EVM have no SLIP-132 prefix of their own: they use ``xpub``/``tpub`` (as
    descriptors do).
    """
    letter = {AddressType.P2SH_P2WPKH: "y", AddressType.P2WPKH: "z"}.get(address_type, "x")
    if network.is_test:
        letter = {"x": "t", "y": "u", "z": "v"}[letter]
    return KEY_VERSIONS_BY_PREFIX[f"{letter}{'prv' if private else 'pub'}"]
