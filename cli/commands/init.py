"""``dpg init``: set up a data directory, its configuration and its database."""

from __future__ import annotations

import json
import os
import stat
import textwrap
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import typer
from pydantic import BaseModel

from dpgnode.errors import ConfigError
from dpgnode.node import DevChains, upgrade_schema
from dpgnode.settings import (
    ApiSettings,
    BackupSettings,
    ChainsSettings,
    ConversionSettings,
    CustodySettings,
    DatabaseSettings,
    DoctorSettings,
    HsmSettings,
    LedgerSettings,
    LogSettings,
    TelemetrySettings,
    TradingSettings,
    default_data_dir,
    semantic_problems,
)

from .. import output
from ..state import settings as load_cli_settings
from ..state import state

_SCHEMES = ("sqlite+pysqlite:///", "postgresql+psycopg://")
_SECTIONS: dict[str, type[BaseModel]] = {
    "database": DatabaseSettings,
    "api": ApiSettings,
    "ledger": LedgerSettings,
    "log": LogSettings,
    "telemetry": TelemetrySettings,
    "hsm": HsmSettings,
    "custody": CustodySettings,
    "trading": TradingSettings,
    "conversion": ConversionSettings,
    "chains": ChainsSettings,
    "backup": BackupSettings,
    "doctor": DoctorSettings,
}
# Examples shown for settings whose default is empty, so the commented line teaches the form.
_EXAMPLES: dict[tuple[str, str], str] = {
    ("database", "url"): '"postgresql+psycopg://dpg@localhost/dpg"',
    ("telemetry", "otlp_endpoint"): '"http://127.0.0.1:4318/v1/traces"',
    ("hsm", "pin_file"): '"/etc/dpg/hsm.pin"',
    ("hsm", "softhsm2_conf"): '"/srv/dpg/hsm/softhsm2.conf"',
    ("trading", "pairs_file"): '"/srv/dpg/pairs.toml"',
    ("chains", "bitcoin"): '{ rpc_url = "http://127.0.0.1:8332", rpc_user = "dpg" }',
    ("chains", "evm"): '{ ethereum = { rpc_url = "http://127.0.0.1:8545", chain_id = 1 } }',
    ("backup", "directory"): '"/mnt/backups/dpg"',
    ("backup", "passphrase_file"): '"/etc/dpg/backup.passphrase"',
    ("backup", "hsm_public_key"): '"/srv/dpg/backup-key.pem"',
    ("doctor", "time_url"): '"https://www.example.org/"',
}
_FLAG_NAMES = {
    ("database", "url"): "--database-url",
    ("api", "host"): "--api-host",
    ("api", "port"): "--api-port",
    ("custody", "network"): "--dev",
    ("chains", "bitcoin"): "--dev",
    ("chains", "evm"): "--dev",
}
_HEADER = """\
# DPG node configuration, written by `dpg init`.
#
# Precedence, lowest to highest: built-in defaults < this file < DPG_* environment
# variables (nested with "__", e.g. DPG_API__PORT=8080) < command-line flags.
# Secrets never belong here: put a database password in DPG_DATABASE__URL instead.
# `dpg config show` prints the effective settings; `dpg config validate` checks them.
"""
_ASSETS_EXAMPLE = """\
# Assets added to the built-in registry, one [[assets]] table each:
# [[assets]]
# code = "USDT-ARB"
# decimals = 6
# name = "Tether USD on Arbitrum"
# kind = "token"
# network = "arbitrum"
"""


def init(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Data directory to set up (overrides the global --data-dir and DPG_DATA_DIR).",
            file_okay=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Database URL to write to dpg.toml (no password: use DPG_DATABASE__URL for "
            "that). Default: the embedded SQLite file.",
        ),
    ] = None,
    api_host: Annotated[
        str | None, typer.Option("--api-host", help="Address the HTTP API listens on.")
    ] = None,
    api_port: Annotated[
        int | None,
        typer.Option("--api-port", min=1, max=65535, help="Port the HTTP API listens on."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Rewrite an existing configuration file from the flags."),
    ] = False,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev",
            help="Configure for the local development chains (`dpg dev chains up`): custody "
            "on regtest, Bitcoin Knots and anvil as the chain nodes. Never for real money.",
        ),
    ] = False,
) -> None:
    """Set up a data directory: the directory (mode 0700), dpg.toml and the database.

    Non-interactive and idempotent: on an initialised directory it keeps the configuration,
    applies pending migrations and says so. Secrets are never written to dpg.toml.

    Examples:
    ```
    dpg init
    dpg init --data-dir /srv/dpg --api-host 0.0.0.0 --api-port 8080
    dpg init --dev
    DPG_DATABASE__URL=postgresql+psycopg://dpg:secret@db/dpg dpg init
    ```
    """
    shared = state(ctx)
    if data_dir is not None:
        shared.data_dir = data_dir
    if database_url is not None:
        _check_database_url(database_url)
    directory = shared.resolved_data_dir()
    config_file = shared.config_path()
    created_dir = _make_data_dir(directory)
    flags = _flags(directory, database_url, api_host, api_port, dev=dev)
    wrote_config = _write_config(ctx, config_file, flags, force)
    current = load_cli_settings(ctx)
    problems = semantic_problems(current)
    if problems:
        raise ConfigError("invalid configuration:\n" + "\n".join(problems))
    before, after = upgrade_schema(current)
    if created_dir:
        output.result(f"Created data directory {directory}")
    if wrote_config:
        output.result(f"Wrote {config_file}")
    if before.current is None:
        output.result(f"Created the database at revision {after.current}")
    elif before.current != after.current:
        output.result(f"Migrated the database from {before.current} to {after.current}")
    if not (created_dir or wrote_config or before.current != after.current):
        output.result(
            f"{directory} is already initialised (database at revision {after.current}); "
            "nothing to do."
        )
        return
    elsewhere = directory != default_data_dir().expanduser().resolve()
    start = f"dpg --data-dir {directory} node start" if elsewhere else "dpg node start"
    output.result(f"Node initialised in {directory}. Start it with: {start}")


def _flags(
    directory: Path, database_url: str | None, api_host: str | None, api_port: int | None,
    *, dev: bool,
) -> dict[str, dict[str, Any]]:
    """The settings the flags ask ``dpg.toml`` to hold."""
    flags: dict[str, dict[str, Any]] = {"database": {}, "api": {}}
    if database_url is not None:
        flags["database"]["url"] = database_url
    if api_host is not None:
        flags["api"]["host"] = api_host
    if api_port is not None:
        flags["api"]["port"] = api_port
    if dev:
        flags.update(DevChains(directory).settings())
    return flags


def _check_database_url(url: str) -> None:
    if not url.startswith(_SCHEMES):
        raise typer.BadParameter(
            "use sqlite+pysqlite:///PATH or postgresql+psycopg://USER@HOST/DB",
            param_hint="--database-url",
        )
    parts = urlsplit(url)
    query = {key.lower() for key in parse_qs(parts.query)}
    if parts.password or query & {"password", "sslpassword"}:
        raise typer.BadParameter(
            "the URL contains a password, and dpg init never writes secrets to dpg.toml: "
            "export DPG_DATABASE__URL=<url> instead and run dpg init without --database-url",
            param_hint="--database-url",
        )


def _make_data_dir(directory: Path) -> bool:
    """Create ``directory`` readable by its owner only; False if it already existed."""
    if directory.is_dir():
        mode = stat.S_IMODE(directory.stat().st_mode)
        if mode & 0o077:
            output.warn(
                f"{directory} is accessible to other users (mode {mode:o}); "
                f"consider `chmod 700 {directory}`"
            )
        return False
    try:
        directory.mkdir(mode=0o700, parents=True)
        directory.chmod(0o700)
    except OSError as exc:
        raise ConfigError(
            f"cannot create data directory {directory}: {exc.strerror or exc}"
        ) from exc
    return True


def _write_config(
    ctx: typer.Context, path: Path, flags: dict[str, dict[str, Any]], force: bool
) -> bool:
    """Write dpg.toml unless it exists (or ``force``); never leaves an invalid file behind."""
    given = list(dict.fromkeys(
        _FLAG_NAMES[(section, key)] for section in flags for key in flags[section]))
    if path.exists() and not force:
        if given:
            output.warn(
                f"{path} exists and was kept: {', '.join(given)} not applied "
                "(edit the file, or re-run with --force to rewrite it)"
            )
        return False
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.unlink(missing_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(render_config(flags))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc
    shared = state(ctx)
    original = shared.config_file
    shared.config_file = temporary
    try:
        load_cli_settings(ctx)  # the new file, with the environment on top, must load
    except ConfigError:
        temporary.unlink(missing_ok=True)
        raise
    finally:
        shared.config_file = original
    os.replace(temporary, path)
    return True


def render_config(flags: dict[str, dict[str, Any]]) -> str:
    """A dpg.toml documenting every setting: flags as values, defaults commented out."""
    parts = [_HEADER]
    for section, model in _SECTIONS.items():
        lines = [f"[{section}]"]
        for name, field in model.model_fields.items():
            for line in textwrap.wrap(" ".join((field.description or "").split()), 88):
                lines.append(f"# {line.replace('``', '`')}")
            if name in flags.get(section, {}):
                lines.append(f"{name} = {_toml(flags[section][name])}")
            elif (section, name) in _EXAMPLES:
                lines.append(f"# {name} = {_EXAMPLES[(section, name)]}")
            elif field.default is None:
                lines.append(f"# {name} =")
            else:
                lines.append(f"# {name} = {_toml(field.default)}")
        parts.append("\n".join(lines) + "\n")
    parts.append(_ASSETS_EXAMPLE)
    return "\n".join(parts)


def _toml(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))
