"""The one place PKCS#11 exceptions become ``DpgError`` categories (STYLE.md §5).

Nothing above this adapter sees a ``pkcs11`` exception or a ``CKR_*`` code. Messages name the
module and the token so an operator knows where to look, and never contain a PIN: the PIN is
not in scope here, and python-pkcs11's exceptions carry only the return code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pkcs11.exceptions as p11

from dpgnode.errors import AuthenticationError, ConfigError, DpgError, UnavailableError

_PIN_REFUSED = (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange)
_PIN_UNUSABLE = (p11.PinExpired, p11.PinLocked, p11.UserPinNotInitialized)
_UNREACHABLE = (
    p11.DeviceError,
    p11.DeviceMemory,
    p11.DeviceRemoved,
    p11.TokenNotPresent,
    p11.TokenNotRecognised,
    p11.SessionClosed,
    p11.SessionHandleInvalid,
    p11.SessionCount,
    p11.HostMemory,
    p11.FunctionFailed,
)

STALE_SESSION = (
    p11.SessionClosed,
    p11.SessionHandleInvalid,
    p11.ObjectHandleInvalid,
    p11.KeyHandleInvalid,
    p11.DeviceRemoved,
    p11.TokenNotPresent,
    p11.UserNotLoggedIn,
)
"""Errors after which one reconnect (new session, new login) may succeed."""


@contextmanager
def map_pkcs11_errors(where: str, pin_source: str = "") -> Iterator[None]:
    """Translate PKCS#11 exceptions raised inside the block.

    Args:
        where: Names the module and token, e.g. ``token 'dpg' of /usr/lib/.../libsofthsm2.so``.
        pin_source: Says where the PIN came from (``environment variable DPG_HSM_PIN``), for
            a refused PIN; never the PIN itself.
    """
    try:
        yield
    except DpgError:
        raise
    except _PIN_REFUSED as exc:
        source = f" (PIN from {pin_source})" if pin_source else ""
        raise AuthenticationError(f"the HSM refused the user PIN of {where}{source}") from exc
    except _PIN_UNUSABLE as exc:
        raise AuthenticationError(
            f"the user PIN of {where} cannot be used ({type(exc).__name__}): "
            "the security officer must reset it"
        ) from exc
    except p11.NoSuchToken as exc:
        raise UnavailableError(
            f"no {where} (is the HSM connected? for SoftHSM2 run `dpg hsm init`)"
        ) from exc
    except p11.MultipleTokensReturned as exc:
        raise ConfigError(f"several tokens match {where}: give each token its own label") from exc
    except _UNREACHABLE as exc:
        raise UnavailableError(f"the HSM is unavailable: {type(exc).__name__} on {where}") from exc
    except p11.PKCS11Error as exc:
        # Anything else is a refusal we did not plan for (a missing mechanism, a policy of the
        # device): name it, and never pick a retryable category that would make a caller
        # retry a signature forever. The operator has to look at the HSM's set-up.
        raise ConfigError(f"the HSM refused: {type(exc).__name__} on {where}") from exc
