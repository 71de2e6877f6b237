"""Stores: a merchant's shop, with the settings its invoices inherit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dpgnode.errors import ValidationError


class SpeedPolicy(StrEnum):
    """Greenfield speed policies: how many confirmations settle an invoice."""

    HIGH = "HighSpeed"
    MEDIUM = "MediumSpeed"
    LOW_MEDIUM = "LowMediumSpeed"
    LOW = "LowSpeed"


@dataclass(frozen=True, slots=True)
class Store:
    """A merchant's shop and the settings its invoices inherit."""

    id: str
    name: str
    created_at: datetime
    website: str = ""
    default_currency: str = "USD"
    invoice_expiration: int = 900
    monitoring_expiration: int = 86400
    speed_policy: SpeedPolicy = SpeedPolicy.MEDIUM
    payment_tolerance: int = 0
    archived: bool = False

    def __post_init__(self) -> None:
        validate_store_fields(
            self.name,
            self.invoice_expiration,
            self.monitoring_expiration,
            self.payment_tolerance,
        )


def validate_store_fields(
    name: str, invoice_expiration: int, monitoring_expiration: int, payment_tolerance: int
) -> None:
    """Store settings that can never be right, whoever sends them."""
    if not name.strip() or len(name) > 100:
        raise ValidationError("name must be 1-100 characters", field="name")
    if not 60 <= invoice_expiration <= 2_592_000:
        raise ValidationError(
            "invoiceExpiration must be between 60 and 2592000 seconds", field="invoiceExpiration"
        )
    if not 600 <= monitoring_expiration <= 2_592_000:
        raise ValidationError(
            "monitoringExpiration must be between 600 and 2592000 seconds",
            field="monitoringExpiration",
        )
    if not 0 <= payment_tolerance <= 100:
        raise ValidationError(
            "paymentTolerance must be between 0 and 100", field="paymentTolerance"
        )
