"""Operators: the registered people who request and approve payouts.

An operator proves who they are with a secret token issued once by ``dpg operator add``;
the node keeps only the token's SHA-256 digest (the token carries 256 random bits, so a
fast hash is enough, as for API keys). Approvals and audit records name the operator id,
never the token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from dpgnode.errors import ValidationError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Operator:
    """A registered operator identity."""

    id: str
    name: str
    token_hash: str
    created_at: datetime
    disabled_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Whether the operator may still request and approve."""
        return self.disabled_at is None


def check_operator_name(name: str) -> str:
    """``name`` if it is 1-64 letters, digits, ``_ . @ -`` (starting with a letter or digit).

    Raises:
        ValidationError: any other name.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValidationError(
            "operator name must be 1-64 letters, digits, '_', '.', '@' or '-'", field="name"
        )
    return name
