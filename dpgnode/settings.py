"""The node's one settings object.

Discovery, lowest to highest precedence:

1. defaults written here;
2. ``dpg.toml`` in the data directory (or the file given with ``--config``);
3. ``DPG_*`` environment variables, nested with ``__`` (``DPG_DATABASE__URL``);
4. values passed explicitly (command-line flags).

The data directory itself comes from ``--data-dir``, else ``DPG_DATA_DIR``, else the
platform's user data directory. Validation runs in two passes so that ``dpg config
validate`` can report every problem at once: pydantic checks each field's type and range
(all errors collected), then :func:`semantic_problems` checks what needs the whole picture
(the database URL's scheme, the data directory being writable).

Secrets are ``SecretStr``: ``dpg config show`` and logs print them masked.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from dpgnode.errors import ConfigError

CONFIG_FILE = "dpg.toml"


class DatabaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    url: SecretStr | None = None
    """SQLAlchemy URL. Empty: the embedded SQLite file ``dpg.sqlite3`` in the data directory.
    PostgreSQL: ``postgresql+psycopg://user:password@host/dbname``."""


class LedgerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    group_commit_max_batch: int = Field(100, ge=1, le=10_000)
    """Most commands the writer puts in one durable transaction."""
    group_commit_max_wait_ms: float = Field(5.0, ge=0, le=1000)
    """Longest a batch waits for company after its first command, in milliseconds."""


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    host: str = "127.0.0.1"
    """Address the HTTP API listens on."""
    port: int = Field(23000, ge=1, le=65535)
    """Port the HTTP API listens on."""
    public_url: str = ""
    """Base URL customers and shops reach the node at (for links); empty: derived from host/port."""
    max_body_bytes: int = Field(65_536, ge=1024, le=10_485_760)
    """Largest request body accepted; larger bodies get 413."""
    rate_limit_per_key: int = Field(600, ge=1)
    """Requests per minute one API key may make."""
    rate_limit_per_ip: int = Field(300, ge=1)
    """Requests per minute one client address may make without a key."""
    idempotency_retention_hours: int = Field(24, ge=24, le=24 * 30)
    """How long an ``Idempotency-Key`` and its first response are kept (at least 24 h)."""
    workers: int = Field(1, ge=1, le=64)
    """HTTP worker processes."""


class LogSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    level: Literal["debug", "info", "warning", "error"] = "info"
    """Least severe level written."""
    format: Literal["json", "console"] = "json"
    """``json``: one object per line (for collectors); ``console``: for people."""


class AssetSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    decimals: int = Field(ge=0, le=36)
    name: str = ""
    kind: Literal["crypto", "token", "fiat"] = "crypto"
    network: str = ""


class Settings(BaseSettings):
    """Everything the node reads from its configuration."""

    model_config = SettingsConfigDict(
        env_prefix="DPG_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    data_dir: Path
    """Where the database, configuration and backups live."""
    database: DatabaseSettings = DatabaseSettings()
    ledger: LedgerSettings = LedgerSettings()
    api: ApiSettings = ApiSettings()
    log: LogSettings = LogSettings()
    assets: list[AssetSettings] = []
    """Assets added to the built-in registry (``[[assets]]`` tables)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = settings_cls.model_config.get("toml_file")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    def database_url(self) -> str:
        if self.database.url is not None and self.database.url.get_secret_value():
            return self.database.url.get_secret_value()
        return f"sqlite+pysqlite:///{self.data_dir / 'dpg.sqlite3'}"


def default_data_dir() -> Path:
    env = os.environ.get("DPG_DATA_DIR")
    return Path(env) if env else Path(platformdirs.user_data_dir("dpg", appauthor=False))


def config_path(data_dir: Path, config_file: Path | None = None) -> Path:
    return config_file if config_file is not None else data_dir / CONFIG_FILE


def load_settings(
    data_dir: Path | None = None,
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Settings from every source; raises ``ConfigError`` listing every invalid field."""
    resolved = (data_dir or default_data_dir()).expanduser().resolve()
    path = config_path(resolved, config_file)
    if config_file is not None and not path.is_file():
        raise ConfigError(f"configuration file {path} does not exist")
    _check_toml(path)

    class _Configured(Settings):
        model_config = SettingsConfigDict(toml_file=path if path.is_file() else None)

    try:
        loaded = _Configured(data_dir=resolved, **(overrides or {}))
    except PydanticValidationError as exc:
        raise ConfigError(
            "invalid configuration:\n" + "\n".join(describe_errors(exc)),
            details={"problems": exc.error_count()},
        ) from exc
    return Settings.model_validate(loaded.model_dump())


def _check_toml(path: Path) -> None:
    if not path.is_file():
        return
    try:
        tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def describe_errors(exc: PydanticValidationError) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
    ]


def semantic_problems(settings: Settings) -> list[str]:
    """Problems that single fields cannot show; empty when the configuration is usable."""
    problems: list[str] = []
    url = settings.database_url()
    if not url.startswith(("sqlite+pysqlite:///", "postgresql+psycopg://")):
        problems.append(
            "database.url: use sqlite+pysqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        )
    directory = settings.data_dir
    probe = directory if directory.exists() else directory.parent
    if not os.access(probe, os.W_OK):
        problems.append(f"data_dir: {directory} is not writable")
    seen: set[str] = set()
    for asset in settings.assets:
        if asset.code in seen:
            problems.append(f"assets: {asset.code} is defined twice")
        seen.add(asset.code)
    return problems
