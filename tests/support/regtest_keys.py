"""Watch-only regtest account keys for tests, from the published BIP84 test mnemonic.

The mnemonic is the one of the BIP84 test vectors ("abandon ... about"): not a secret. Each
account number gives a distinct account key, so tests sharing one regtest node can watch
addresses of their own.
"""

from __future__ import annotations

from dpgnode.domain.custody.bip32 import master_from_seed
from dpgnode.domain.custody.mnemonic import mnemonic_to_seed
from dpgnode.domain.custody.networks import Network
from tests.support.custody import VECTOR_MNEMONIC

_SEED = mnemonic_to_seed(VECTOR_MNEMONIC)


def regtest_vpub(account: int = 0) -> str:
    """The BIP84 account key ``m/84'/1'/<account>'`` as a ``vpub`` (P2WPKH on regtest)."""
    master = master_from_seed(_SEED, Network.REGTEST)
    return master.derive_path(f"m/84'/1'/{account}'").public().serialize("vpub")
