"""DPG node: a self-hosted merchant payment gateway and exchange operator node."""

from dpgnode.errors import (
    AuthenticationError,
    ConfigError,
    ConflictError,
    DpgError,
    IdempotencyKeyReusedError,
    InsufficientFundsError,
    IntegrityError,
    NotFoundError,
    PermissionDeniedError,
    PolicyDeniedError,
    RateLimitedError,
    SecretNotReplayableError,
    UnavailableError,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "ConflictError",
    "DpgError",
    "IdempotencyKeyReusedError",
    "InsufficientFundsError",
    "IntegrityError",
    "NotFoundError",
    "PermissionDeniedError",
    "PolicyDeniedError",
    "RateLimitedError",
    "SecretNotReplayableError",
    "UnavailableError",
    "ValidationError",
    "__version__",
]
