from __future__ import annotations

from dpgnode.api.schemas.base import Input, Output
from dpgnode.domain.store import SpeedPolicy, Store
from dpgnode.services.access import StoreFields


class StoreData(Output):
    id: str
    name: str
    website: str
    default_currency: str
    invoice_expiration: int
    """Seconds until a new invoice expires."""
    monitoring_expiration: int
    """Seconds an expired invoice is still watched for payments."""
    speed_policy: SpeedPolicy
    payment_tolerance: int
    """Percent of the amount an invoice may be underpaid by and still settle."""
    archived: bool

    @classmethod
    def of(cls, store: Store) -> StoreData:
        return cls(
            id=store.id, name=store.name, website=store.website,
            default_currency=store.default_currency,
            invoice_expiration=store.invoice_expiration,
            monitoring_expiration=store.monitoring_expiration,
            speed_policy=store.speed_policy, payment_tolerance=store.payment_tolerance,
            archived=store.archived,
        )


class StoreChange(Input):
    """Fields shared by create and update; absent or null keeps the current value."""

    website: str | None = None
    default_currency: str | None = None
    invoice_expiration: int | None = None
    monitoring_expiration: int | None = None
    speed_policy: SpeedPolicy | None = None
    payment_tolerance: int | None = None

    def fields(self, name: str | None) -> StoreFields:
        return StoreFields(
            name=name, website=self.website, default_currency=self.default_currency,
            invoice_expiration=self.invoice_expiration,
            monitoring_expiration=self.monitoring_expiration,
            speed_policy=self.speed_policy, payment_tolerance=self.payment_tolerance,
        )


class CreateStoreRequest(StoreChange, kw_only=True):
    name: str


class UpdateStoreRequest(StoreChange, kw_only=True):
    name: str | None = None
