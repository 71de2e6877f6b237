from __future__ import annotations

from typing import Protocol


class IdGenerator(Protocol):
    """Makes identifiers for new objects.

    Contract: ``new(prefix)`` returns ``f"{prefix}_{suffix}"`` where suffixes from one
    generator sort in creation order (UUIDv7-like: time-ordered keys keep B-tree inserts
    at the right edge of the index) and never repeat.
    """

    def new(self, prefix: str) -> str:
        """A new, time-ordered id ``prefix_<hex>``."""
        ...
