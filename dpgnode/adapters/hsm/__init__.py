"""The signer's HSM adapter: the ``Signer`` port over PKCS#11 (python-pkcs11).

Only ``dpgnode.signer`` imports this package (an import-linter contract enforces it, R22):
the API, the watcher and ``dpgnode.node`` never load a PKCS#11 module or see a key.
"""

from .pin import PinSource
from .pkcs11 import Pkcs11Signer
from .runtime import RUNTIME, TokenLocation
from .softhsm import DevToken, create_token, dev_token_paths, generate_pin

__all__ = [
    "RUNTIME",
    "DevToken",
    "PinSource",
    "Pkcs11Signer",
    "TokenLocation",
    "create_token",
    "dev_token_paths",
    "generate_pin",
]
