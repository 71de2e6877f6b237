"""Backup keys as the entry points see them (they may not import adapters themselves).

A passphrase key both seals and opens; an HSM key is sealed to here (public half) and
opened only through :func:`dpgnode.signer.backup_key_opener`.
"""

from __future__ import annotations

from dpgnode.adapters.backup.keys import (
    MIN_PASSPHRASE_CHARS,
    KeyOpener,
    KeySealer,
    PassphraseKey,
    passphrase_source,
    sealer_from_settings,
)
from dpgnode.settings import Settings

__all__ = [
    "MIN_PASSPHRASE_CHARS",
    "KeyOpener",
    "KeySealer",
    "configured_passphrase",
    "passphrase_key",
    "sealer_from_settings",
]


def passphrase_key(passphrase: str) -> PassphraseKey:
    """A key from a passphrase typed at a prompt (``ConfigError`` when too short)."""
    return PassphraseKey(passphrase)


def configured_passphrase(settings: Settings) -> str | None:
    """The passphrase from ``backup.passphrase_file`` or its variable; ``None`` if neither.

    Raises:
        ConfigError: a passphrase file is configured but unusable (missing, mode, empty).
    """
    source = passphrase_source(settings)
    return source.read() if source.available() else None
