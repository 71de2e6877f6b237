"""Custody wallets (keychains), their accounts and address pools, as the node records them.

Vocabulary (also README "Custody"):

- a **keychain** (``kc_…``) is what ``dpg wallet create/import/add-xpub`` makes: either an HD
  seed sealed by the HSM (``seed``: the node can spend) or a watch-only account key
  (``watch_only``: it can only receive). The node stores the sealed seed's ciphertext (safe
  at rest) and account xpubs, never a seed, a mnemonic or a private key;
- a **key account** (``ka_…``) is one BIP32 account of a keychain on one chain: Bitcoin
  BIP84 (P2WPKH, the default), BIP86 (P2TR), BIP49 (P2SH-P2WPKH) or BIP44 (P2PKH), or an
  EVM account ``m/44'/60'/account'`` whose addresses serve every EVM chain;
- its **address pool** is the list of issued indexes: the database is the record of every
  index ever handed out, an index is issued once (never reused) and "used" is set by the
  chain watchers when a payment arrives.

The API's *wallets* (``wal_…``) are something else: ledger balances (see
``dpgnode.domain.wallets``).

Invariant kept by :func:`gap_report`: the gap reported is the longest run of consecutive
issued-but-unused indexes; an external wallet restored from the xpub finds every payment,
including a late one to the last issued address, only with a gap limit above it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dpgnode.domain.custody.networks import AddressType, Network
from dpgnode.errors import ValidationError

EXTERNAL_BRANCH = 0
"""Receiving addresses (BIP44 ``change = 0``)."""
CHANGE_BRANCH = 1
"""Change addresses of the node's own payouts (BIP44 ``change = 1``)."""
MAX_ACCOUNT_INDEX = 2**31 - 1
MAX_ADDRESS_INDEX = 2**31 - 1
EVM_COIN_TYPE = 60


class KeychainKind(StrEnum):
    """Whether the node can spend from a keychain."""

    SEED = "seed"
    WATCH_ONLY = "watch_only"


class Chain(StrEnum):
    """Which family of chains a key account serves."""

    BITCOIN = "bitcoin"
    EVM = "evm"


class Scheme(StrEnum):
    """Derivation scheme of a key account; names the purpose level of its path."""

    BIP84 = "bip84"
    BIP86 = "bip86"
    BIP49 = "bip49"
    BIP44 = "bip44"
    EVM = "evm"

    @property
    def chain(self) -> Chain:
        """The chain family the scheme's addresses belong to."""
        return Chain.EVM if self is Scheme.EVM else Chain.BITCOIN

    @property
    def address_type(self) -> AddressType:
        """The address type the scheme's keys produce."""
        return _ADDRESS_TYPES[self]

    @property
    def purpose(self) -> int:
        """The BIP43 purpose (first, hardened path level)."""
        return _PURPOSES[self]


_ADDRESS_TYPES = {
    Scheme.BIP84: AddressType.P2WPKH,
    Scheme.BIP86: AddressType.P2TR,
    Scheme.BIP49: AddressType.P2SH_P2WPKH,
    Scheme.BIP44: AddressType.P2PKH,
    Scheme.EVM: AddressType.EVM,
}
_PURPOSES = {Scheme.BIP84: 84, Scheme.BIP86: 86, Scheme.BIP49: 49, Scheme.BIP44: 44, Scheme.EVM: 44}


def parse_scheme(text: str, *, field: str = "scheme") -> Scheme:
    """The scheme named ``text`` (``bip84``, ``bip86``, ``bip49``, ``bip44``, ``evm``).

    Raises:
        ValidationError: an unknown name.
    """
    try:
        return Scheme(text.strip().lower())
    except (ValueError, AttributeError):
        raise ValidationError(
            "unknown scheme; expected bip84, bip86, bip49, bip44 or evm", field=field
        ) from None


def account_path(scheme: Scheme, network: Network, account: int) -> str:
    """The hardened account path, ``m/84'/0'/0'`` or ``m/44'/60'/0'`` for EVM.

    Bitcoin's coin type is 0 on mainnet and 1 on every test network (BIP44); EVM chains all
    use coin type 60, so one EVM account serves Ethereum, Polygon and BNB Chain alike.
    """
    if not 0 <= account <= MAX_ACCOUNT_INDEX:
        raise ValidationError("account index must be between 0 and 2^31-1", field="account")
    coin = EVM_COIN_TYPE if scheme is Scheme.EVM else (1 if network.is_test else 0)
    return f"m/{scheme.purpose}'/{coin}'/{account}'"


@dataclass(frozen=True, slots=True)
class Keychain:
    """A custody wallet: a sealed seed the node can spend from, or a watch-only key."""

    id: str
    label: str
    kind: KeychainKind
    network: Network
    created_at: datetime
    sealed_seed: str | None = None
    """The signer's sealed-seed text (ciphertext under an HSM key): safe to store."""
    fingerprint: str = ""
    """Hex fingerprint of the master key (seed) or of the account key (watch-only)."""

    @property
    def can_spend(self) -> bool:
        """Whether the signer holds a key for this keychain."""
        return self.kind is KeychainKind.SEED and self.sealed_seed is not None


@dataclass(frozen=True, slots=True)
class KeyAccount:
    """One BIP32 account of a keychain: an account xpub and its address pool counters."""

    id: str
    keychain_id: str
    scheme: Scheme
    network: Network
    account: int
    path: str
    """Account path from the master key; ``""`` when a watch-only key does not say."""
    xpub: str
    """The account's extended public key, as given or as the signer derived it."""
    created_at: datetime
    next_index: int = 0
    """Next external index to issue; every lower index has been issued exactly once."""
    next_change_index: int = 0
    last_used_index: int = -1
    """Highest external index a payment was seen on (-1: none yet)."""

    @property
    def chain(self) -> Chain:
        """The chain family the account serves."""
        return self.scheme.chain


@dataclass(frozen=True, slots=True)
class IssuedAddress:
    """An address handed out from a pool; never handed out again."""

    account_id: str
    branch: int
    index: int
    address: str
    issued_at: datetime
    reference: str = ""
    """What the address was issued for (an invoice id), empty if nothing was given."""
    used_at: datetime | None = None
    owner: str = ""
    """``owner_type:owner_id`` whose account a payment to the address credits (a store);
    empty: the operator's unassigned deposits."""

    @property
    def used(self) -> bool:
        """Whether a payment to the address has been seen."""
        return self.used_at is not None


@dataclass(frozen=True, slots=True)
class GapReport:
    """How far issued-but-unused addresses stretch on one account's receiving branch.

    Attributes:
        issued: Indexes issued so far (``0 .. issued - 1``).
        used: How many of them have received a payment.
        last_used_index: Highest used index, -1 when none.
        trailing_unused: Issued indexes past the last used one (what new invoices grow).
        gap: Longest run of consecutive issued-but-unused indexes anywhere.
        gap_limit_needed: The smallest gap limit with which an external wallet restored from
            the xpub finds every payment, even one arriving later at any issued address.
    """

    issued: int
    used: int
    last_used_index: int
    trailing_unused: int
    gap: int
    gap_limit_needed: int


def gap_report(issued: int, used_indexes: Iterable[int]) -> GapReport:
    """The gap of a branch with ``issued`` indexes of which ``used_indexes`` saw payments."""
    if issued < 0:
        raise ValidationError("issued count cannot be negative", field="issued")
    used = sorted({i for i in used_indexes if 0 <= i < issued})
    interior, previous = 0, -1
    for index in used:
        interior = max(interior, index - previous - 1)
        previous = index
    trailing = issued - 1 - previous
    # A wallet stops after `limit` unused addresses in a row: a used address after a run of
    # r unused ones needs limit >= r + 1; a payment still to come at the last issued address
    # follows a run of trailing - 1 unused ones, so it needs limit >= trailing.
    needed = max(interior + 1 if used else 0, trailing)
    return GapReport(
        issued=issued,
        used=len(used),
        last_used_index=previous,
        trailing_unused=trailing,
        gap=max(interior, trailing),
        gap_limit_needed=needed,
    )


def crosses_gap_limit(trailing_before: int, trailing_after: int, limit: int) -> bool:
    """Whether issuing one address moved the trailing run past ``limit`` just now.

    The alert fires once per crossing, not on every invoice past the limit: marking an
    address used resets the run, and the next crossing alerts again.
    """
    return trailing_before <= limit < trailing_after
