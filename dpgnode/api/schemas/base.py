"""Base classes for request and response bodies.

Request bodies refuse unknown fields (a typo or a privileged field such as ``id`` is a 400
naming it, never silently ignored). Optional fields default to ``None``, so an explicit
JSON ``null`` means the same as leaving the field out (what real Greenfield clients send).
"""

from __future__ import annotations

import msgspec


class Input(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    """A request body."""


class Output(msgspec.Struct, rename="camel", kw_only=True):
    """A response body."""
