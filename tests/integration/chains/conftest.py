"""Fixtures for signing against real chain nodes: Bitcoin Knots regtest, anvil, and two signers.

- ``bitcoind``: one regtest node per test session with a descriptor wallet ``funder`` holding
  50 mature BTC (used for funding only: every spend under test is built and signed by our
  code, never by bitcoind's wallet);
- ``anvil``: one anvil per test session;
- ``signer``: parametrized over ``memory`` (``tests.support.memory_signer.MemorySigner``)
  and ``hsm`` (the real PKCS#11 signer over a private SoftHSM2 token), wrapped in a
  ``CountingSigner`` (``signing.py``) so tests can assert that a refused request signed
  nothing;
- ``hot_key``: a fresh hot key in that signer (P2WPKH and EVM spends);
- ``seed``: a fresh random seed sealed by that signer, for HD (P2TR) keys.

Processes are started on free 127.0.0.1 ports and stopped by their PIDs at session end.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dpgnode.adapters.hsm import PinSource, TokenLocation
from dpgnode.ports.signer import HotKeyRef, SealedSeed, Signer
from dpgnode.signer import Pkcs11Signer
from tests.integration.chains.signing import BURN, CountingSigner
from tests.support.anvil import AnvilNode, start_anvil
from tests.support.bitcoind import BitcoindNode, start_bitcoind
from tests.support.memory_signer import MemorySigner
from tests.support.softhsm import SoftHsm

HSM_TOKEN = "dpg-chains"
HSM_PIN = "chains-user-pin-5e1b"
HSM_KEK = "dpg-kek-chains"


@pytest.fixture(scope="session")
def bitcoind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BitcoindNode]:
    with start_bitcoind(tmp_path_factory.mktemp("bitcoind")) as node:
        node.rpc("createwallet", "funder")
        node.mine(1, node.rpc("getnewaddress", wallet="funder"))
        node.mine(100, BURN)  # matures the funder's coinbase
        yield node


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilNode]:
    with start_anvil() as node:
        yield node


@pytest.fixture(scope="session")
def hsm_signer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signer]:
    directory = tmp_path_factory.mktemp("softhsm-chains")
    hsm = SoftHsm.create(directory)
    hsm.create_token(HSM_TOKEN, HSM_PIN)
    pin_file: Path = directory / "user.pin"
    pin_file.write_text(HSM_PIN + "\n")
    pin_file.chmod(0o600)
    location = TokenLocation(hsm.module, HSM_TOKEN, hsm.conf)
    with Pkcs11Signer(location, PinSource(file=pin_file), kek_label=HSM_KEK) as signer:
        signer.ensure_kek()
        yield signer


@pytest.fixture(params=["memory", "hsm"])
def signer(request: pytest.FixtureRequest) -> CountingSigner:
    if request.param == "memory":
        return CountingSigner(MemorySigner())
    return CountingSigner(request.getfixturevalue("hsm_signer"))


@pytest.fixture
def hot_key(signer: CountingSigner) -> HotKeyRef:
    """A fresh hot key in the signer (unique label: HSM tokens outlive one test)."""
    ref = HotKeyRef(f"hot:test:{uuid.uuid4().hex[:12]}")
    signer.generate_hot_key(ref.label)
    return ref


@pytest.fixture
def seed(signer: CountingSigner) -> SealedSeed:
    """A fresh random seed sealed by the signer (HD keys derive from it inside the signer)."""
    return signer.seal_seed(secrets.token_bytes(32), aad=b"wallet:test")
