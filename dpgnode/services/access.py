"""Stores and API keys: create, update, archive; issue, authenticate and revoke keys.

API keys are 40 random hex characters (as Greenfield's), shown once at creation and stored
only as their SHA-256 digest: the key carries 160 random bits, so a fast hash is enough and
lets authentication look the key up by digest in one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from dpgnode.domain.access import ApiKey, parse_permissions
from dpgnode.domain.events import DomainEvent
from dpgnode.domain.store import SpeedPolicy, Store
from dpgnode.errors import (
    AuthenticationError,
    IdempotencyKeyReusedError,
    NotFoundError,
    ValidationError,
)
from dpgnode.ports.clock import Clock
from dpgnode.ports.ids import IdGenerator
from dpgnode.ports.queries import AccessReader
from dpgnode.ports.uow import Tx, Writer


@dataclass(frozen=True, slots=True)
class StoreFields:
    """Settings a caller may set on a store; ``None`` keeps the current value."""

    name: str | None = None
    website: str | None = None
    default_currency: str | None = None
    invoice_expiration: int | None = None
    monitoring_expiration: int | None = None
    speed_policy: SpeedPolicy | None = None
    payment_tolerance: int | None = None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new API key: ``secret`` is shown to the operator once and never stored."""

    key: ApiKey
    secret: str


def hash_key(secret: str) -> str:
    """SHA-256 digest under which an API key secret is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _store_event(kind: str, store: Store) -> DomainEvent:
    return DomainEvent(
        type=f"store.{kind}",
        aggregate=f"store:{store.id}",
        payload={"storeId": store.id, "name": store.name},
    )


class AccessService:
    """Stores and API keys over the ``Writer`` and the read side."""

    def __init__(
        self,
        writer: Writer,
        reader: AccessReader,
        ids: IdGenerator,
        clock: Clock,
        currencies: Iterable[str],
        request_key_retention: timedelta = timedelta(hours=24),
    ) -> None:
        self._request_key_retention = request_key_retention
        self._writer = writer
        self._reader = reader
        self._ids = ids
        self._clock = clock
        self._currencies = frozenset(currencies)

    # -- stores ------------------------------------------------------------------------

    def create_store(self, fields: StoreFields, *, request_key: str | None = None) -> Store:
        """Create a store; ``fields.name`` is required.

        With ``request_key`` (the caller's idempotency key) creation happens once: a repeat
        within the key's retention window returns the store the first request created,
        decided in the same transaction that would otherwise insert, so even a crash between
        commit and response cannot duplicate it. After the window the key counts as new.
        """
        if fields.name is None:
            raise ValidationError("name is required", field="name")
        store = self._apply(
            Store(id=self._ids.new("st"), name=fields.name, created_at=self._clock.now()), fields
        )

        def command(tx: Tx) -> Store:
            creation_key = request_key
            if request_key is not None:
                existing = tx.store_by_creation_key(request_key)
                if existing is not None:
                    if existing.created_at + self._request_key_retention <= store.created_at:
                        creation_key = None  # the key expired: a new request, a new store
                    elif self._apply(existing, fields) != existing:
                        raise IdempotencyKeyReusedError(
                            "idempotency key was already used to create a different store"
                        )
                    else:
                        return existing
            tx.save_store(store, creation_key=creation_key)
            tx.emit(_store_event("created", store))
            return store

        return self._writer.run(command)

    def update_store(self, store_id: str, fields: StoreFields) -> Store:
        """Change the given settings of a store."""

        def command(tx: Tx) -> Store:
            updated = self._apply(_existing_store(tx, store_id), fields)
            tx.save_store(updated)
            tx.emit(_store_event("updated", updated))
            return updated

        return self._writer.run(command)

    def archive_store(self, store_id: str) -> Store:
        """Archive a store: it disappears from listings; its ledger stays."""

        def command(tx: Tx) -> Store:
            archived = replace(_existing_store(tx, store_id), archived=True)
            tx.save_store(archived)
            tx.emit(_store_event("archived", archived))
            return archived

        return self._writer.run(command)

    def store(self, store_id: str, visible: frozenset[str] | None = None) -> Store:
        """A store the caller may see (``visible=None``: all stores), else NotFound."""
        store = self._reader.store(store_id)
        if store is None or store.archived or (visible is not None and store_id not in visible):
            raise NotFoundError(f"no store {store_id[:64]}", details={"field": "storeId"})
        return store

    def stores(self, visible: frozenset[str] | None = None) -> list[Store]:
        """Active stores the caller may see."""
        return [s for s in self._reader.stores(visible) if not s.archived]

    def _apply(self, store: Store, fields: StoreFields) -> Store:
        if fields.default_currency is not None and fields.default_currency not in self._currencies:
            raise ValidationError(
                f"unknown currency {fields.default_currency[:16]!r}", field="defaultCurrency"
            )
        changes = {k: v for k, v in _as_dict(fields).items() if v is not None}
        return replace(store, **changes)

    # -- API keys ------------------------------------------------------------------------

    def create_api_key(self, label: str, permissions: Iterable[str]) -> IssuedKey:
        """Issue a key; store-scoped permissions must name existing stores."""
        parsed = parse_permissions(permissions)
        if len(label) > 200:
            raise ValidationError("label is longer than 200 characters", field="label")
        for permission in parsed:
            if permission.store_id is not None:
                self.store(permission.store_id)
        secret = secrets.token_hex(20)
        key = ApiKey(
            id=self._ids.new("key"),
            label=label,
            permissions=parsed,
            key_hash=hash_key(secret),
            created_at=self._clock.now(),
        )

        def command(tx: Tx) -> ApiKey:
            tx.save_api_key(key)
            tx.emit(DomainEvent("apikey.created", f"apikey:{key.id}", {"keyId": key.id}))
            return key

        return IssuedKey(self._writer.run(command), secret)

    def authenticate(self, secret: str) -> ApiKey:
        """The active key whose secret this is, else ``AuthenticationError``."""
        key = self._reader.api_key_by_hash(hash_key(secret)) if secret else None
        if key is None or not key.active:
            raise AuthenticationError("invalid or revoked API key")
        return key

    def revoke_api_key(self, key_id: str) -> ApiKey:
        """Revoke a key; revoking twice is a no-op."""

        def command(tx: Tx) -> ApiKey:
            key = tx.api_key(key_id)
            if key is None:
                raise NotFoundError(f"no API key {key_id[:64]}", details={"field": "keyId"})
            if not key.active:
                return key
            revoked = replace(key, revoked_at=self._clock.now())
            tx.save_api_key(revoked)
            tx.emit(DomainEvent("apikey.revoked", f"apikey:{key.id}", {"keyId": key.id}))
            return revoked

        return self._writer.run(command)

    def api_keys(self) -> list[ApiKey]:
        """Every key (secrets are never stored, so never returned)."""
        return list(self._reader.api_keys())


def _existing_store(tx: Tx, store_id: str) -> Store:
    store = tx.store(store_id)
    if store is None or store.archived:
        raise NotFoundError(f"no store {store_id[:64]}", details={"field": "storeId"})
    return store


def _as_dict(fields: StoreFields) -> dict[str, Any]:
    return {name: getattr(fields, name) for name in StoreFields.__slots__}
