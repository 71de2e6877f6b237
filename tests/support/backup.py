"""Backup keys for tests: a passphrase key at scrypt's cheapest accepted cost.

The cost is recorded in each key slot, so backups made this way open with the normal key
too; only the time an attacker needs per guess differs. Production keys use the default.
"""

from __future__ import annotations

from dpgnode.adapters.backup.keys import PassphraseKey

CHEAP_LOG_N = 14


def cheap_key(passphrase: str) -> PassphraseKey:
    return PassphraseKey(passphrase, log_n=CHEAP_LOG_N)
