"""Fixtures for the signer against a real SoftHSM2 (R23).

One private SoftHSM2 installation per test session (its own ``softhsm2.conf`` and token
directory under pytest's tmp), with three tokens made by ``softhsm2-util``:

- ``dpg-test``: the signer's token (user PIN :data:`USER_PIN`), with the KEK :data:`KEK`;
- ``dpg-other``: a second token, to show the signer picks its token by label;
- ``dpg-pins``: a token no fixture logs in to, for refused-PIN tests (a login belongs to the
  whole process, so a refused PIN can only be observed on a token nobody is logged in to).

Hot-key labels are unique per test (:func:`label`), so tests share the token safely.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pkcs11
import pytest

from dpgnode.adapters.hsm import PinSource, Pkcs11Signer, TokenLocation
from dpgnode.adapters.hsm.runtime import LOCK, RUNTIME
from tests.integration.hsm.tokens import (
    KEK,
    OTHER_PIN,
    OTHER_TOKEN,
    PIN_TOKEN,
    PINS_PIN,
    TOKEN,
    USER_PIN,
    write_pin,
)
from tests.support.softhsm import SoftHsm


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsm:
    hsm = SoftHsm.create(tmp_path_factory.mktemp("softhsm"))
    hsm.create_token(TOKEN, USER_PIN)
    hsm.create_token(OTHER_TOKEN, OTHER_PIN)
    hsm.create_token(PIN_TOKEN, PINS_PIN)
    return hsm


@pytest.fixture(scope="session")
def pin_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pin(tmp_path_factory.mktemp("pin") / "user.pin", USER_PIN)


@pytest.fixture
def location(softhsm: SoftHsm) -> TokenLocation:
    return TokenLocation(softhsm.module, TOKEN, softhsm.conf)


@pytest.fixture
def signer(location: TokenLocation, pin_file: Path) -> Iterator[Pkcs11Signer]:
    with Pkcs11Signer(location, PinSource(file=pin_file), kek_label=KEK) as opened:
        opened.ensure_kek()
        yield opened


@pytest.fixture
def label() -> str:
    return f"hot:TEST:{uuid.uuid4().hex[:16]}"


@pytest.fixture
def raw_session(signer: Pkcs11Signer) -> Iterator[pkcs11.Session]:
    """A plain session on the signer's token, authorised by the signer's (process-wide) login.

    Lets a test poke at the token directly (read attributes, try to wrap a key) the way any
    other code in the process could.
    """
    signer.status()  # logged in now
    with LOCK:
        session = RUNTIME.token(signer.location).open(rw=True)
    try:
        yield session
    finally:
        with LOCK:
            session.close()
