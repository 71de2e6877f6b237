"""Chain drivers for the chain-port contract: the simulator, Bitcoin Knots regtest, anvil.

Each driver lives in its own module of ``tests/support`` and exposes one function,

    open_driver(workdir: Path) -> ContextManager[ChainDriver]

which checks its component first (``require_bitcoind()`` / ``require_anvil()``: a missing
component skips, or fails under ``CI``) and stops whatever it started on exit. Adding a chain
is one line in :data:`DRIVERS`. Tests that need a mempool take ``mempool_driver`` (only the
drivers whose chain keeps payments unconfirmed), the others ``chain_driver`` (all of them), so
no test skips for a capability its chain lacks. A driver module that does not exist yet skips
its cases with a reason naming it, so the contract can land before the drivers it checks.

The driver is opened once per session (per xdist worker); the tests stay independent by
using fresh addresses, and each leaves the chain with a valid best chain behind it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import cast

import pytest

from tests.support.chain_driver import ChainDriver


@dataclass(frozen=True)
class DriverSpec:
    name: str
    module: str
    real_component: bool
    """Talks to a real node (carries the ``integration`` marker)."""
    mempool: bool
    """Payments wait unconfirmed (``ChainDriver.has_mempool``): the mempool and replacement
    tests run only over these, so no test has to skip for a missing capability."""


DRIVERS = (
    DriverSpec("sim", "tests.support.sim_driver", real_component=False, mempool=True),
    DriverSpec("bitcoind", "tests.support.bitcoind_driver", real_component=True, mempool=True),
    DriverSpec("anvil", "tests.support.anvil_driver", real_component=True, mempool=False),
    DriverSpec("anvil-token", "tests.support.anvil_token_driver", real_component=True,
               mempool=False),
)


def _param(spec: DriverSpec) -> object:
    marks = [pytest.mark.integration] if spec.real_component else []
    return pytest.param(spec, id=spec.name, marks=marks)


@pytest.fixture(scope="session")
def open_chain_driver(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[DriverSpec], ChainDriver]]:
    """Opens each driver once per session, for every fixture that asks for it."""
    with ExitStack() as stack:
        opened: dict[str, ChainDriver] = {}

        def open_driver(spec: DriverSpec) -> ChainDriver:
            if spec.name not in opened:
                try:
                    module = importlib.import_module(spec.module)
                except ModuleNotFoundError as exc:
                    if exc.name != spec.module:
                        raise
                    pytest.skip(f"no {spec.name} driver yet: "
                                f"{spec.module.replace('.', '/')}.py is absent")
                workdir = tmp_path_factory.mktemp(f"chain-{spec.name}")
                driver = stack.enter_context(module.open_driver(workdir))
                assert driver.has_mempool == spec.mempool, f"{spec.name}: fix DRIVERS"
                opened[spec.name] = cast(ChainDriver, driver)
            return opened[spec.name]

        yield open_driver


@pytest.fixture(scope="session", params=[_param(spec) for spec in DRIVERS])
def chain_driver(
    request: pytest.FixtureRequest, open_chain_driver: Callable[[DriverSpec], ChainDriver]
) -> ChainDriver:
    return open_chain_driver(request.param)


@pytest.fixture(scope="session", params=[_param(spec) for spec in DRIVERS if spec.mempool])
def mempool_driver(
    request: pytest.FixtureRequest, open_chain_driver: Callable[[DriverSpec], ChainDriver]
) -> ChainDriver:
    return open_chain_driver(request.param)
