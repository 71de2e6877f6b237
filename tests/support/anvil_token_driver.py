"""The chain-port contract's anvil driver paying the test ERC-20 (``USDT-ETH``) instead of ETH.

A module of its own because the contract's ``conftest.py`` takes one ``open_driver`` per
module; see :mod:`tests.support.anvil_driver`.
"""

from __future__ import annotations

from tests.support.anvil_driver import open_token_driver as open_driver

__all__ = ["open_driver"]
