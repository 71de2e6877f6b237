"""Names and PINs of the test tokens (see conftest.py), importable by the test modules."""

from __future__ import annotations

import os
from pathlib import Path

TOKEN = "dpg-test"
OTHER_TOKEN = "dpg-other"
PIN_TOKEN = "dpg-pins"
USER_PIN = "test-user-pin-8d1f"
OTHER_PIN = "other-user-pin-77aa"
PINS_PIN = "pins-user-pin-42c0"
KEK = "dpg-kek-1"


def write_pin(path: Path, pin: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(pin + "\n")
    return path
