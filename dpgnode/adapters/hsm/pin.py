"""Where the token's user PIN comes from: an environment variable or a 0600 file.

The PIN is read when the signer logs in (and again if it must log in anew after the HSM
restarted), never stored in settings, never accepted on a command line and never logged.
:class:`PinSource` has no field holding a PIN, so printing or logging one reveals nothing.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from dpgnode.errors import ConfigError

MAX_PIN_LENGTH = 255  # PKCS#11 tokens (SoftHSM2, YubiHSM 2) accept at most this many bytes


@dataclass(frozen=True, slots=True)
class PinSource:
    """Names where to read the PIN; exactly one of ``env_var`` and ``file`` is set."""

    env_var: str | None = None
    file: Path | None = None

    def __post_init__(self) -> None:
        if (self.env_var is None) == (self.file is None):
            raise ConfigError("a PIN source is an environment variable or a file, exactly one")

    def describe(self) -> str:
        """Where the PIN comes from, for messages (never the PIN)."""
        if self.file is not None:
            return f"file {self.file}"
        return f"environment variable {self.env_var}"

    def read(self) -> str:
        """The PIN, stripped of one trailing newline.

        Raises:
            ConfigError: The variable is unset or empty, the file is missing, unreadable,
                readable by group or others, empty, or the PIN is too long.
        """
        if self.file is not None:
            pin = self._read_file(self.file)
        else:
            pin = self._read_env(self.env_var or "")
        if not pin:
            raise ConfigError(f"the HSM PIN from {self.describe()} is empty")
        if len(pin.encode()) > MAX_PIN_LENGTH:
            raise ConfigError(f"the HSM PIN from {self.describe()} is too long")
        return pin

    @staticmethod
    def _read_env(name: str) -> str:
        value = os.environ.get(name)
        if value is None:
            raise ConfigError(
                f"no HSM PIN: set the environment variable {name} "
                "or hsm.pin_file (DPG_HSM__PIN_FILE)"
            )
        return value.removesuffix("\n")

    @staticmethod
    def _read_file(path: Path) -> str:
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                # Like ssh with a private key: a PIN others can read is not a secret.
                raise ConfigError(
                    f"the HSM PIN file {path} is accessible by group or others: chmod 600 it"
                )
            return path.read_text(encoding="utf-8").removesuffix("\n")
        except FileNotFoundError as exc:
            raise ConfigError(f"the HSM PIN file {path} does not exist") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the HSM PIN file {path}: {type(exc).__name__}") from exc
