"""Process-wide PKCS#11 state: loaded modules, SoftHSM2 configuration, shared logins.

Why process-wide: PKCS#11 state belongs to the process, not to an object. ``C_Initialize``
runs once per module per process; a user login belongs to the application and covers every
session on that token (a second ``C_Login`` fails with ``USER_ALREADY_LOGGED_IN``); SoftHSM2
reads ``SOFTHSM2_CONF`` and scans its token directory only in ``C_Initialize``. So:

- every call into a module holds :data:`LOCK` (python-pkcs11 sessions are not thread-safe,
  and a re-initialisation must not run under another thread's signature);
- every signer of this process on one token shares one logged-in session; a second signer
  whose PIN differs from the one that logged in is refused without a login attempt;
- loading a module with another SoftHSM2 configuration (tests, ``dpg hsm init``)
  re-initialises it and bumps its *generation*: sessions opened before are stale, and their
  owners log in again, with their own PIN source, on next use.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pkcs11
import pkcs11.exceptions as p11

from dpgnode.errors import AuthenticationError, ConfigError

from .errors import map_pkcs11_errors
from .pin import PinSource

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Pkcs11Lib  # noqa: N812 - the class is named `lib`

LOCK = threading.RLock()
"""Held around every call into a PKCS#11 module of this process."""

SOFTHSM2_CONF_ENV = "SOFTHSM2_CONF"


@dataclass(frozen=True, slots=True)
class TokenLocation:
    """A token: the module that reaches it, its label, and SoftHSM2's configuration if any."""

    module: Path
    token_label: str
    softhsm2_conf: Path | None = None

    def describe(self) -> str:
        """``token 'dpg' of /usr/lib/softhsm/libsofthsm2.so``, for messages."""
        return f"token '{self.token_label}' of {self.module}"


@dataclass(slots=True)
class _Module:
    lib: Pkcs11Lib
    conf: str | None
    generation: int


@dataclass(slots=True)
class _Login:
    session: pkcs11.Session
    generation: int
    pin_digest: bytes | None


@contextmanager
def _conf_environment(conf: str | None) -> Iterator[None]:
    """Set ``SOFTHSM2_CONF`` for one ``C_Initialize`` only, then put the old value back."""
    if conf is None:
        yield
        return
    previous = os.environ.get(SOFTHSM2_CONF_ENV)
    os.environ[SOFTHSM2_CONF_ENV] = conf
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(SOFTHSM2_CONF_ENV, None)
        else:
            os.environ[SOFTHSM2_CONF_ENV] = previous


class Runtime:
    """The modules and logins of this process (one instance: :data:`RUNTIME`)."""

    def __init__(self) -> None:
        self._modules: dict[str, _Module] = {}
        self._logins: dict[tuple[Path, Path | None, str], _Login] = {}
        self._users: dict[tuple[Path, Path | None, str], int] = {}
        # PINs are compared by keyed digest, so no PIN is kept beyond the login call.
        self._pin_key = secrets.token_bytes(32)

    def module(self, location: TokenLocation) -> _Module:
        """The loaded module for ``location``, initialised with its SoftHSM2 configuration."""
        key = str(location.module)
        conf = str(location.softhsm2_conf) if location.softhsm2_conf is not None else None
        loaded = self._modules.get(key)
        if loaded is None:
            if not location.module.is_file():
                raise ConfigError(
                    f"no PKCS#11 module at {location.module} "
                    "(SoftHSM2: apt-get install softhsm2; else set hsm.module)"
                )
            try:
                with _conf_environment(conf):
                    lib = pkcs11.lib(key)
            except p11.PKCS11Error as exc:
                raise ConfigError(
                    f"cannot load the PKCS#11 module {location.module}: {exc}"
                ) from exc
            loaded = _Module(lib, conf, 1)
            self._modules[key] = loaded
        elif conf is not None and loaded.conf != conf:
            self._reinitialize(loaded, conf, location)
        return loaded

    def refresh(self, location: TokenLocation) -> None:
        """Re-initialise the module so it sees tokens created since it was loaded."""
        loaded = self.module(location)
        self._reinitialize(loaded, loaded.conf, location)

    def _reinitialize(self, loaded: _Module, conf: str | None, location: TokenLocation) -> None:
        with _conf_environment(conf), map_pkcs11_errors(location.describe()):
            loaded.lib.reinitialize()
        loaded.conf = conf
        loaded.generation += 1

    def generation(self, location: TokenLocation) -> int:
        """Changes whenever sessions opened on this module before became stale."""
        return self.module(location).generation

    def token(self, location: TokenLocation) -> pkcs11.Token:
        """The token with ``location``'s label; the module is re-scanned once if it is absent."""
        lib = self.module(location).lib
        with map_pkcs11_errors(location.describe()):
            try:
                return lib.get_token(token_label=location.token_label)
            except p11.NoSuchToken:
                self.refresh(location)
                return lib.get_token(token_label=location.token_label)

    def login(self, location: TokenLocation, pin: PinSource) -> tuple[pkcs11.Session, int]:
        """The shared logged-in read-write session on ``location`` and its generation.

        Raises:
            AuthenticationError: The token refused the PIN, or another signer of this
                process is logged in with a different PIN.
            ConfigError: The PIN source gives no PIN.
            UnavailableError: The token cannot be reached.
        """
        loaded = self.module(location)
        key = self._key(location)
        current = self._logins.get(key)
        secret = pin.read()
        digest = self._digest(secret)
        if current is not None and current.generation == loaded.generation:
            if current.pin_digest is not None and not hmac.compare_digest(
                current.pin_digest, digest
            ):
                raise AuthenticationError(
                    f"the user PIN from {pin.describe()} differs from the one this process "
                    f"logged in to {location.describe()} with"
                )
            return current.session, current.generation
        token = self.token(location)
        with map_pkcs11_errors(location.describe(), pin.describe()):
            try:
                session = token.open(rw=True, user_pin=secret)
                pin_digest: bytes | None = digest
            except p11.UserAlreadyLoggedIn:
                # Logged in by code outside this runtime (a test, a tool sharing the process):
                # the login is the application's, so a plain session is already authorised.
                session = token.open(rw=True)
                pin_digest = None
        loaded = self.module(location)  # token() may have re-scanned the module
        self._logins[key] = _Login(session, loaded.generation, pin_digest)
        return session, loaded.generation

    def invalidate(self, location: TokenLocation, session: pkcs11.Session) -> None:
        """Drop ``session`` after it failed as stale, so the next :meth:`login` opens anew.

        Only the current shared session is dropped: a signer still holding an older one
        must not close the session another signer has just opened. The dropped session is
        closed (which logs the application out) when its module was not re-initialised
        since: after a stale key or object handle the session is alive and logged in, and
        merely forgetting it would leak it and make the next ``C_Login`` fail with
        ``USER_ALREADY_LOGGED_IN``, a login whose PIN nobody checked.
        """
        key = self._key(location)
        current = self._logins.get(key)
        if current is None or current.session is not session:
            return
        del self._logins[key]
        self._close(location, current)

    def attach(self, location: TokenLocation) -> None:
        """Count one more signer using ``location``."""
        key = self._key(location)
        self._users[key] = self._users.get(key, 0) + 1

    def detach(self, location: TokenLocation) -> None:
        """Count one signer fewer; the last one closes the session, which logs out."""
        key = self._key(location)
        remaining = self._users.get(key, 0) - 1
        if remaining > 0:
            self._users[key] = remaining
            return
        self._users.pop(key, None)
        login = self._logins.pop(key, None)
        if login is not None:
            self._close(location, login)

    def _close(self, location: TokenLocation, login: _Login) -> None:
        # Looked up, not loaded: self.module() would re-initialise a module loaded with
        # another SoftHSM2 configuration just to close a session that is void anyway.
        loaded = self._modules.get(str(location.module))
        if loaded is None or loaded.generation != login.generation:
            return  # re-initialised since: C_Finalize closed the session already
        with suppress(p11.PKCS11Error):  # already gone with the device: nothing to undo
            login.session.close()

    @staticmethod
    def _key(location: TokenLocation) -> tuple[Path, Path | None, str]:
        return (location.module, location.softhsm2_conf, location.token_label)

    def _digest(self, pin: str) -> bytes:
        return hmac.new(self._pin_key, pin.encode(), hashlib.sha256).digest()


RUNTIME = Runtime()
"""The one runtime of this process."""
