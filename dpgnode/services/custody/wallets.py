"""Custody keychains: create or import an HD wallet, add a watch-only account (``dpg wallet``).

Creating: BIP39 entropy -> mnemonic (returned once, for the operator to write down) -> seed
-> sealed by the signer under an HSM-held key, bound to the keychain id (AAD) -> the signer
derives each account's xpub from the sealed seed. The database receives the sealed seed's
ciphertext and the xpubs, never the mnemonic, the seed or a private key; the mnemonic and
seed live only in this call's locals (Python cannot wipe ``str``/``bytes``; the process that
runs ``dpg wallet create`` ends right after).

Watch-only: an xpub/ypub/zpub/tpub/upub/vpub or an output descriptor becomes one key
account; private keys are refused without being echoed (the parser never repeats input).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dpgnode.domain.custody.audit import AuditAction, AuditEvent, AuditResult
from dpgnode.domain.custody.bip32 import format_path
from dpgnode.domain.custody.encoding import hash160
from dpgnode.domain.custody.extkeys import AccountKey, parse_account_key
from dpgnode.domain.custody.mnemonic import mnemonic_from_entropy, mnemonic_to_seed
from dpgnode.domain.custody.networks import AddressType, Network, key_version_for
from dpgnode.domain.custody.wallet import (
    KeyAccount,
    Keychain,
    KeychainKind,
    Scheme,
    account_path,
)
from dpgnode.errors import ConflictError, NotFoundError, ValidationError
from dpgnode.ports.clock import Clock
from dpgnode.ports.custody import KeychainStore
from dpgnode.ports.ids import IdGenerator
from dpgnode.ports.signer import HdKeyRef, SealedSeed, Signer
from dpgnode.ports.uow import Tx, Writer
from dpgnode.services.custody.audit import AuditService

DEFAULT_SCHEMES = (Scheme.BIP84, Scheme.EVM)
"""Accounts a new wallet gets unless others are asked for: Bitcoin P2WPKH and EVM."""
_ENTROPY_BYTES = {12: 16, 24: 32}
_SCHEME_OF_TYPE = {
    AddressType.P2WPKH: Scheme.BIP84,
    AddressType.P2TR: Scheme.BIP86,
    AddressType.P2SH_P2WPKH: Scheme.BIP49,
    AddressType.P2PKH: Scheme.BIP44,
    AddressType.EVM: Scheme.EVM,
}


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """One account a new keychain should have."""

    scheme: Scheme
    account: int = 0


@dataclass(frozen=True, slots=True)
class KeychainView:
    """A keychain with its accounts."""

    keychain: Keychain
    accounts: tuple[KeyAccount, ...]


@dataclass(frozen=True, slots=True)
class CreatedKeychain:
    """A new keychain and its mnemonic: show ``mnemonic`` once, then forget it."""

    view: KeychainView
    mnemonic: str

    def __repr__(self) -> str:  # never print the phrase by accident
        return f"CreatedKeychain(view={self.view!r}, mnemonic=<hidden>)"


class KeychainService:
    """Custody keychains over storage, the writer and (for seeds) the signer."""

    def __init__(
        self,
        store: KeychainStore,
        writer: Writer,
        ids: IdGenerator,
        clock: Clock,
        audit: AuditService,
        *,
        entropy: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self._store = store
        self._writer = writer
        self._ids = ids
        self._clock = clock
        self._audit = audit
        self._entropy = entropy

    def create(
        self,
        signer: Signer,
        *,
        words: int = 24,
        passphrase: str = "",
        label: str = "",
        network: Network = Network.MAINNET,
        accounts: Sequence[AccountSpec] = (),
        actor: str = "cli",
    ) -> CreatedKeychain:
        """Generate a mnemonic, seal its seed in the signer and record the account xpubs."""
        if words not in _ENTROPY_BYTES:
            raise ValidationError("a new mnemonic has 12 or 24 words", field="words")
        mnemonic = mnemonic_from_entropy(self._entropy(_ENTROPY_BYTES[words]))
        view = self._from_mnemonic(
            signer, mnemonic, passphrase, label, network, accounts, actor,
            AuditAction.WALLET_CREATED,
        )
        return CreatedKeychain(view, mnemonic)

    def import_mnemonic(
        self,
        signer: Signer,
        mnemonic: str,
        *,
        passphrase: str = "",
        label: str = "",
        network: Network = Network.MAINNET,
        accounts: Sequence[AccountSpec] = (),
        actor: str = "cli",
    ) -> KeychainView:
        """Seal the seed of an existing mnemonic and record its account xpubs.

        Raises:
            ValidationError: the phrase fails the word list or checksum (the error names
                a word's position, never a word).
        """
        return self._from_mnemonic(
            signer, mnemonic, passphrase, label, network, accounts, actor,
            AuditAction.WALLET_IMPORTED,
        )

    def _from_mnemonic(
        self, signer: Signer, mnemonic: str, passphrase: str, label: str, network: Network,
        specs: Sequence[AccountSpec], actor: str, action: AuditAction,
    ) -> KeychainView:
        _check_label(label)
        specs = _unique_specs(specs or [AccountSpec(s) for s in DEFAULT_SCHEMES])
        seed = mnemonic_to_seed(mnemonic, passphrase)
        keychain_id = self._ids.new("kc")
        sealed = signer.seal_seed(seed, aad=keychain_aad(keychain_id))
        del seed
        master = signer.public_key(HdKeyRef(sealed, "m"))
        now = self._clock.now()
        keychain = Keychain(
            id=keychain_id, label=label, kind=KeychainKind.SEED, network=network,
            created_at=now, sealed_seed=sealed.to_json(), fingerprint=hash160(master)[:4].hex(),
        )
        rows = tuple(self._seed_account(signer, sealed, keychain, spec) for spec in specs)
        return self._record(KeychainView(keychain, rows), action, actor)

    def _seed_account(
        self, signer: Signer, sealed: SealedSeed, keychain: Keychain, spec: AccountSpec
    ) -> KeyAccount:
        path = account_path(spec.scheme, keychain.network, spec.account)
        version = key_version_for(keychain.network, spec.scheme.address_type, private=False)
        xpub = signer.account_xpub(sealed, path, version=version.version.to_bytes(4, "big"))
        # Parse what the signer returned: it must be a public key of the expected network.
        parse_account_key(xpub, keychain.network, spec.scheme.address_type)
        return KeyAccount(
            id=self._ids.new("ka"), keychain_id=keychain.id, scheme=spec.scheme,
            network=keychain.network, account=spec.account, path=path, xpub=xpub,
            created_at=keychain.created_at,
        )

    def add_watch_only(
        self,
        text: str,
        *,
        label: str = "",
        network: Network = Network.MAINNET,
        scheme: Scheme | None = None,
        actor: str = "cli",
    ) -> KeychainView:
        """A watch-only keychain with one account from an account key or a descriptor.

        Raises:
            ValidationError: a malformed key or descriptor, a private key, another network,
                or a scheme the key's prefix contradicts (nothing of the input is echoed).
            ConflictError: the key is already known.
        """
        _check_label(label)
        key = parse_account_key(
            text, network, scheme.address_type if scheme is not None else None, field="xpub"
        )
        stored = key.descriptor() if key.origin is not None else key.key_text()
        origin = key.origin.path if key.origin is not None else ()
        now = self._clock.now()
        keychain = Keychain(
            id=self._ids.new("kc"), label=label, kind=KeychainKind.WATCH_ONLY,
            network=network, created_at=now, fingerprint=_key_fingerprint(key),
        )
        account = KeyAccount(
            id=self._ids.new("ka"), keychain_id=keychain.id,
            scheme=scheme or _SCHEME_OF_TYPE[key.address_type], network=network,
            account=origin[2] & 0x7FFFFFFF if len(origin) >= 3 else 0,
            path=_origin_path(origin), xpub=stored, created_at=now,
        )
        return self._record(KeychainView(keychain, (account,)), AuditAction.WATCH_ONLY_ADDED,
                            actor)

    def _record(self, view: KeychainView, action: AuditAction, actor: str) -> KeychainView:
        keychain = view.keychain
        event = AuditEvent(
            actor=actor, action=action, subject=keychain.id, result=AuditResult.OK,
            details={
                "kind": str(keychain.kind), "network": str(keychain.network),
                "accounts": ",".join(f"{a.id}:{a.scheme}:{a.account}" for a in view.accounts),
            },
        )

        def command(tx: Tx) -> KeychainView:
            self._store.add_keychain(tx, keychain, view.accounts)
            self._audit.append(tx, event)
            return view

        try:
            return self._writer.run(command)
        except ConflictError as exc:
            raise ConflictError("this account key is already known to the node") from exc

    def keychains(self) -> list[KeychainView]:
        """Every keychain with its accounts, oldest first."""
        accounts = self._store.accounts()
        return [
            KeychainView(k, tuple(a for a in accounts if a.keychain_id == k.id))
            for k in self._store.keychains()
        ]

    def keychain(self, keychain_id: str) -> KeychainView:
        """One keychain with its accounts (``NotFoundError`` when unknown)."""
        keychain = self._store.keychain(keychain_id)
        if keychain is None:
            raise NotFoundError(f"no wallet {keychain_id[:64]}", details={"field": "wallet"})
        return KeychainView(keychain, tuple(self._store.accounts(keychain_id)))

    def account(self, account_id: str) -> KeyAccount:
        """One key account (``NotFoundError`` when unknown)."""
        account = self._store.account(account_id)
        if account is None:
            raise NotFoundError(f"no key account {account_id[:64]}", details={"field": "account"})
        return account


def keychain_aad(keychain_id: str) -> bytes:
    """The associated data a keychain's seed is sealed with: the seal opens only for it."""
    return f"dpg:keychain:{keychain_id}".encode()


def _check_label(label: str) -> None:
    if len(label) > 200 or any(ord(c) < 32 for c in label):
        raise ValidationError("label must be at most 200 printable characters", field="label")


def _unique_specs(specs: Sequence[AccountSpec]) -> list[AccountSpec]:
    unique = list(dict.fromkeys(specs))
    if len(unique) > 16:
        raise ValidationError("at most 16 accounts per wallet", field="scheme")
    return unique


def _key_fingerprint(key: AccountKey) -> str:
    if key.origin is not None:
        return key.origin.fingerprint.hex()
    return key.key.fingerprint().hex()


def _origin_path(origin: tuple[int, ...]) -> str:
    return format_path(origin, marker="'") if origin else ""
