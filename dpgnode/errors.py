"""The node's exception tree, free of HTTP and of any framework.

Every error a caller can act on is a :class:`DpgError` with a stable snake-case ``code``
(documented, shown to API clients and CLI users) and ``details`` naming the field or the
object involved. Adapters translate vendor exceptions into this tree in one place each;
``dpgnode.api.errors`` maps the categories to HTTP statuses and the CLI maps them to exit
codes. Nothing else inspects vendor exceptions.

    DpgError
    ├── ValidationError          bad input: a field is missing, malformed or out of range
    ├── NotFoundError            no such object (or not visible to the caller)
    ├── AuthenticationError      no credentials, or credentials that do not match a key
    ├── PermissionDeniedError    valid credentials without the permission the action needs
    ├── ConflictError            illegal state transition; idempotency key reused
    │   ├── IdempotencyKeyReusedError
    │   └── SecretNotReplayableError
    ├── InsufficientFundsError   a posting would overdraw an account that forbids it
    ├── PolicyDeniedError        a limit, allow-list or approval rule refused the action
    ├── RateLimitedError         too many requests; carries ``retry_after``
    ├── UnavailableError         transient: retry later; carries ``retry_after``
    ├── ConfigError              the configuration is invalid
    └── IntegrityError           an invariant failed: stop the writer and alert, never continue
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class DpgError(Exception):
    """Root of every error the node raises on purpose."""

    code: ClassVar[str] = "error"

    def __init__(self, message: str, *, details: Mapping[str, str | int] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: Mapping[str, str | int] = dict(details or {})

    def __str__(self) -> str:
        return self.message


class ValidationError(DpgError):
    """Input that can never succeed as sent; ``details['field']`` names the culprit."""

    code = "validation_failed"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        details: Mapping[str, str | int] | None = None,
    ) -> None:
        merged = dict(details or {})
        if field is not None:
            merged["field"] = field
        super().__init__(message, details=merged)
        self.field = field


class NotFoundError(DpgError):
    code = "not_found"


class AuthenticationError(DpgError):
    code = "unauthenticated"


class PermissionDeniedError(DpgError):
    code = "forbidden"


class ConflictError(DpgError):
    code = "conflict"


class IdempotencyKeyReusedError(ConflictError):
    """The same idempotency key arrived with a different request body."""

    code = "idempotency_key_reused"


class SecretNotReplayableError(ConflictError):
    """A retried request whose first response carried a secret that is shown only once."""

    code = "secret_not_replayable"


class InsufficientFundsError(DpgError):
    code = "insufficient_funds"


class PolicyDeniedError(DpgError):
    code = "policy_denied"


class _RetryableError(DpgError):
    def __init__(
        self,
        message: str,
        *,
        retry_after: int = 1,
        details: Mapping[str, str | int] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class RateLimitedError(_RetryableError):
    code = "rate_limited"


class UnavailableError(_RetryableError):
    code = "unavailable"


class ConfigError(DpgError):
    code = "config_invalid"


class IntegrityError(DpgError):
    """An invariant does not hold. Never caught and continued."""

    code = "integrity_violation"


def ensure(condition: bool, message: str) -> None:
    """Check an invariant in production too (``assert`` vanishes under ``python -O``)."""
    if not condition:
        raise IntegrityError(message)
