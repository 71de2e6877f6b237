"""SoftHSM2 for tests: a private configuration and token directory, tokens made by softhsm2-util.

Tests that need an HSM call :func:`require_softhsm` (skips with the install command when
SoftHSM2 is missing; with ``CI`` set it FAILS instead, since a CI machine without it is a
broken set-up), then build a :class:`SoftHsm` in a temporary directory and create tokens in
it. The system's own token directory (``/var/lib/softhsm/tokens``) is never touched.

Test PINs are passed to ``softhsm2-util`` on its command line: they protect nothing. The
node's own ``dpg hsm init`` never does that (see ``dpgnode/adapters/hsm/softhsm.py``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["MODULE", "SKIP_REASON", "SoftHsm", "require_softhsm"]

MODULE = Path(os.environ.get("DPG_TEST_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so"))
"""The PKCS#11 module under test (SoftHSM2's, unless ``DPG_TEST_PKCS11_MODULE`` names another)."""
SKIP_REASON = "SoftHSM2 not available: apt-get install softhsm2 opensc"
_TIMEOUT_S = 60


def require_softhsm() -> Path:
    """The module path, or skip the test (fail when ``CI`` is set)."""
    if MODULE.is_file() and shutil.which("softhsm2-util") is not None:
        return MODULE
    if os.environ.get("CI"):
        pytest.fail(f"{SKIP_REASON} (CI is set, so this test may not skip)")
    pytest.skip(SKIP_REASON)


@dataclass(frozen=True)
class SoftHsm:
    """A private SoftHSM2 installation: ``softhsm2.conf`` and ``tokens/`` under ``directory``."""

    directory: Path
    module: Path = MODULE

    @property
    def conf(self) -> Path:
        return self.directory / "softhsm2.conf"

    @classmethod
    def create(cls, directory: Path) -> SoftHsm:
        """Write the configuration that confines SoftHSM2 to ``directory``."""
        require_softhsm()
        tokens = directory / "tokens"
        tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
        hsm = cls(directory)
        hsm.conf.write_text(
            f"directories.tokendir = {tokens}\n"
            "objectstore.backend = file\n"
            "log.level = ERROR\n"
            "slots.removable = false\n"
        )
        return hsm

    def create_token(self, label: str, user_pin: str, so_pin: str = "so-pin-0000") -> None:
        """Initialise a free slot as a token labelled ``label`` with softhsm2-util."""
        result = subprocess.run(  # fixed argv, no shell; test PINs only
            [
                "softhsm2-util",
                "--init-token",
                "--free",
                "--label",
                label,
                "--so-pin",
                so_pin,
                "--pin",
                user_pin,
            ],
            env={**os.environ, "SOFTHSM2_CONF": str(self.conf)},
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"softhsm2-util failed: {result.stdout}{result.stderr}")

    def token_labels(self) -> list[str]:
        """Labels of the initialised tokens, as ``softhsm2-util --show-slots`` reports them."""
        result = subprocess.run(  # fixed argv, no shell
            ["softhsm2-util", "--show-slots"],
            env={**os.environ, "SOFTHSM2_CONF": str(self.conf)},
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=True,
        )
        labels = []
        for line in result.stdout.splitlines():
            key, _, value = line.strip().partition(":")
            if key == "Label" and value.strip():
                labels.append(value.strip())
        return labels
