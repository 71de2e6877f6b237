"""The signer's wiring: builds the PKCS#11 signer from settings (RELIABILITY.md R22).

This is the only module that imports ``dpgnode.adapters.hsm`` (import-linter enforces it),
and ``dpgnode.node`` and ``dpgnode.api`` may not import it, even indirectly: the API and
watcher roles of the node cannot load a PKCS#11 module, so a compromised web process has no
signing path. ``dpg hsm`` and the signer role reach the HSM through here.

Where things come from (``[hsm]`` settings, see :class:`~dpgnode.settings.HsmSettings`):

- the token: ``hsm.module`` + ``hsm.token_label``, and for SoftHSM2 ``hsm.softhsm2_conf``,
  else ``DATA_DIR/hsm/softhsm2.conf`` when ``dpg hsm init`` made one, else the
  environment's ``SOFTHSM2_CONF``;
- the PIN: ``hsm.pin_file`` when set, else the variable named by ``hsm.pin_env`` when it is
  set, else the development PIN file ``DATA_DIR/hsm/user.pin`` when it exists, else an
  error naming both ways. Never a command-line argument, never a settings value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dpgnode.adapters.backup.keys import (
    EcdhOpener,
    fingerprint,
    load_public_key,
    public_key_path,
    public_pem,
)
from dpgnode.adapters.hsm import (
    RUNTIME,
    PinSource,
    Pkcs11Signer,
    TokenLocation,
    create_token,
    dev_token_paths,
    generate_pin,
)
from dpgnode.adapters.hsm.runtime import LOCK
from dpgnode.errors import ConfigError, DpgError
from dpgnode.settings import Settings

__all__ = [
    "HSM_DIR",
    "BackupKeySetup",
    "DevTokenSetup",
    "HsmHealth",
    "Pkcs11Signer",
    "backup_key_opener",
    "build_signer",
    "check_hsm",
    "ensure_backup_key",
    "hsm_configured",
    "hsm_dir",
    "init_dev_token",
    "pin_source",
    "token_location",
]

HSM_DIR = "hsm"
"""Folder of the development token under the data directory."""


def hsm_dir(settings: Settings) -> Path:
    """``DATA_DIR/hsm``: where ``dpg hsm init`` keeps a development token."""
    return settings.data_dir / HSM_DIR


def token_location(settings: Settings) -> TokenLocation:
    """The module, token label and SoftHSM2 configuration the settings point at."""
    conf = settings.hsm.softhsm2_conf
    if conf is None:
        dev_conf = dev_token_paths(hsm_dir(settings), settings.hsm.token_label).conf
        conf = dev_conf if dev_conf.is_file() else None
    return TokenLocation(settings.hsm.module, settings.hsm.token_label, conf)


def pin_source(settings: Settings) -> PinSource:
    """Where the PIN is read from (see the module docstring for the order)."""
    if settings.hsm.pin_file is not None:
        return PinSource(file=settings.hsm.pin_file)
    if settings.hsm.pin_env in os.environ:
        return PinSource(env_var=settings.hsm.pin_env)
    dev_pin = dev_token_paths(hsm_dir(settings), settings.hsm.token_label).user_pin_file
    if dev_pin.is_file():
        return PinSource(file=dev_pin)
    return PinSource(env_var=settings.hsm.pin_env)  # reading it says how to provide one


def build_signer(settings: Settings) -> Pkcs11Signer:
    """A signer on the configured token; nothing is opened until its first call.

    The caller closes it (``with build_signer(s) as signer:``).
    """
    return Pkcs11Signer(
        token_location(settings), pin_source(settings), kek_label=settings.hsm.kek_label
    )


@dataclass(frozen=True, slots=True)
class DevTokenSetup:
    """What ``dpg hsm init`` did. ``user_pin`` is set only when the token was just created."""

    created: bool
    kek_created: bool
    directory: Path
    conf: Path
    user_pin_file: Path
    so_pin_file: Path
    token_label: str
    kek_label: str
    user_pin: str | None = None

    def __repr__(self) -> str:
        return f"DevTokenSetup(created={self.created}, directory={self.directory})"


def init_dev_token(settings: Settings) -> DevTokenSetup:
    """Create (once) a SoftHSM2 token under ``DATA_DIR/hsm`` and its active KEK.

    Idempotent: a second run creates nothing new except a missing KEK, and returns no PIN.

    Raises:
        ConfigError: ``hsm.module`` is not SoftHSM2, ``hsm.softhsm2_conf`` points elsewhere,
            or ``softhsm2-util`` is missing.
    """
    if "softhsm" not in settings.hsm.module.name.lower():
        raise ConfigError(
            f"`dpg hsm init` creates SoftHSM2 development tokens; hsm.module is "
            f"{settings.hsm.module}. Initialise a production HSM with its vendor's tools"
        )
    dev = dev_token_paths(hsm_dir(settings), settings.hsm.token_label)
    configured = settings.hsm.softhsm2_conf
    if configured is not None and configured.resolve() != dev.conf.resolve():
        raise ConfigError(
            f"hsm.softhsm2_conf is {configured}; "
            f"`dpg hsm init` keeps its token under {dev.directory}"
        )
    user_pin: str | None = None
    if not dev.user_pin_file.exists():
        user_pin = generate_pin()
        create_token(dev, user_pin)
        location = TokenLocation(settings.hsm.module, dev.label, dev.conf)
        with LOCK:
            RUNTIME.refresh(location)  # a module loaded earlier has not seen the new token
    with Pkcs11Signer(
        TokenLocation(settings.hsm.module, dev.label, dev.conf),
        pin_source(settings) if user_pin is None else PinSource(file=dev.user_pin_file),
        kek_label=settings.hsm.kek_label,
    ) as signer:
        kek_created = signer.ensure_kek()
    return DevTokenSetup(
        created=user_pin is not None,
        kek_created=kek_created,
        directory=dev.directory,
        conf=dev.conf,
        user_pin_file=dev.user_pin_file,
        so_pin_file=dev.so_pin_file,
        token_label=dev.label,
        kek_label=settings.hsm.kek_label,
        user_pin=user_pin,
    )


# -- backups (``dpg backup``): the HSM key backups are encrypted to -------------------------


@dataclass(frozen=True, slots=True)
class BackupKeySetup:
    """What ``dpg backup key create`` did: the key pair and where its public half went."""

    created: bool
    label: str
    public_key_file: Path
    fingerprint: str


def ensure_backup_key(settings: Settings) -> BackupKeySetup:
    """Create (once) the HSM's backup key pair and write its public half as PEM (0644).

    The public key file is rewritten from the token each time, so a replaced file (which
    would send backups to someone else's key) is repaired by running this again.
    """
    label = settings.backup.hsm_key_label
    with build_signer(settings) as signer:
        created, der = signer.ensure_backup_key(label)
    public = load_public_key(der)
    target = public_key_path(settings)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_bytes(public_pem(public))
    os.replace(temporary, target)
    return BackupKeySetup(created, label, target, fingerprint(public))


def backup_key_opener(settings: Settings) -> tuple[EcdhOpener, Pkcs11Signer]:
    """An opener of HSM-keyed backups and the signer it uses (the caller closes it)."""
    signer = build_signer(settings)
    return EcdhOpener(signer.backup_agree), signer


@dataclass(frozen=True, slots=True)
class HsmHealth:
    """What ``dpg doctor`` learns from the token (after logging in with the PIN source)."""

    token_label: str
    can_sign: bool
    kek_present: bool
    pin_source: str
    backup_key_matches: bool | None
    """Whether the backup public key file is the token's (``None``: not HSM-keyed)."""


def hsm_configured(settings: Settings) -> bool:
    """Whether a PIN source is set up at all (a file, the variable, or a dev token's file)."""
    source = pin_source(settings)
    return source.file is not None or (source.env_var or "") in os.environ


def check_hsm(settings: Settings) -> HsmHealth:
    """Log in and read the token's state; raises the signer's ``DpgError`` when unusable."""
    source = pin_source(settings)
    with build_signer(settings) as signer:
        report = signer.status()
        matches: bool | None = None
        if settings.backup.key_source == "hsm":
            file = public_key_path(settings)
            try:
                held = load_public_key(signer.backup_public_key(settings.backup.hsm_key_label))
                matches = fingerprint(held) == fingerprint(load_public_key(file.read_bytes()))
            except (OSError, DpgError):
                matches = False
    return HsmHealth(
        report.token_label, report.can_sign, report.kek_present, source.describe(), matches
    )
