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
from typing import Annotated, Any, Literal

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


class TelemetrySettings(BaseModel):
    """OpenTelemetry traces of API requests, off unless an OTLP endpoint is set.

    Needs the ``otel`` extra (``pip install 'dpgnode[otel]'``); ``/metrics`` (Prometheus)
    needs nothing here.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    otlp_endpoint: str = Field("", pattern=r"^(https?://\S+)?$")
    """OTLP/HTTP traces endpoint of a collector, e.g. ``http://127.0.0.1:4318/v1/traces``.
    Empty: no traces."""
    otlp_headers: SecretStr | None = None
    """Headers sent to the collector, ``name=value`` pairs separated by commas (often an API
    key: prefer ``DPG_TELEMETRY__OTLP_HEADERS``)."""
    service_name: str = Field("dpg-node", min_length=1, max_length=64)
    """``service.name`` of the spans (tell nodes apart in one collector)."""
    sample_ratio: float = Field(1.0, ge=0, le=1)
    """Share of requests traced (1: all); a caller's sampled ``traceparent`` is followed."""


class AssetSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    decimals: int = Field(ge=0, le=36)
    name: str = ""
    kind: Literal["crypto", "token", "fiat"] = "crypto"
    network: str = ""


class HsmSettings(BaseModel):
    """The signer's HSM: a PKCS#11 module, a token chosen by label, where its PIN comes from.

    The PIN itself is never a setting: it is read from the environment variable ``pin_env``
    or from ``pin_file`` at the moment the signer logs in.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    module: Path = Path("/usr/lib/softhsm/libsofthsm2.so")
    """PKCS#11 module of the HSM: SoftHSM2 for development; in production the vendor's module
    (YubiHSM 2 ``yubihsm_pkcs11.so``, Nitrokey HSM ``opensc-pkcs11.so``, a cloud HSM's)."""
    token_label: str = Field("dpg", min_length=1, max_length=32)
    """Label of the token the signer uses (slot numbers change after initialisation; labels
    do not)."""
    pin_env: str = Field("DPG_HSM_PIN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Name of the environment variable that holds the token's user PIN."""
    pin_file: Path | None = None
    """File holding the user PIN (mode 0600); when set it wins over ``pin_env``. Empty and
    ``pin_env`` unset: the development PIN file ``dpg hsm init`` wrote (DATA_DIR/hsm/user.pin)."""
    kek_label: str = Field("dpg-kek-1", min_length=1, max_length=64)
    """Label of the AES-256 key in the token that seals wallet seeds (the active KEK)."""
    softhsm2_conf: Path | None = None
    """SoftHSM2 configuration the module is loaded with (``SOFTHSM2_CONF``). Empty:
    DATA_DIR/hsm/softhsm2.conf when ``dpg hsm init`` created it, else the environment's."""


class FixedRateSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    base: str
    """Asset code of the unit priced (``BTC``)."""
    quote: str
    """Asset code the price is in (``USD``)."""
    rate: str
    """Units of ``quote`` for one ``base``, a decimal string (``"60000"``); never a float."""


class ConversionSettings(BaseModel):
    """Conversion quotes: price terms, quote lifetime and where rates come from.

    Rates are the median of the fresh sources (fixed rates below, the order book's mid
    price); with no fresh source a quote is refused, never priced from a default.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    quote_lifetime_seconds: int = Field(30, ge=5, le=3600)
    """How long a quote can be accepted after it is made."""
    spread_bps: int = Field(50, ge=0, le=5000)
    """Spread kept in the client rate, in basis points of the mid rate (50 = 0.5 %)."""
    fee_bps: int = Field(10, ge=0, le=5000)
    """Fee on the amount sold, in basis points, paid in the sold asset to the operator."""
    max_slippage_bps: int = Field(100, ge=0, le=5000)
    """Book route: the market order's protection price, this far below the quoted rate."""
    rate_max_age_seconds: int = Field(60, ge=1, le=86400)
    """Rate observations older than this are not used."""
    min_sources: int = Field(1, ge=1, le=20)
    """Fewest fresh sources a rate needs; fewer and quotes are refused."""
    rate_max_deviation_bps: int = Field(500, ge=0, le=5000)
    """Sources further than this from the median are outliers and left out (0: keep all);
    two sources further apart than twice this refuse quotes instead of meeting halfway."""
    pivots: list[str] = ["USD", "USDT"]
    """Assets tried, in order, to cross two rates when a pair has no direct rate."""
    reference_asset: str = "USD"
    """Currency of value limits; each quote records its value in it. Empty: no value limits."""
    operator_id: str = Field("op", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    """Ledger owner id of the operator whose ``inventory`` and ``fees`` accounts convert."""
    book_mid_rates: bool = True
    """Use the order book's mid price as a rate source (when the node runs books)."""
    fixed_rates: list[FixedRateSettings] = []
    """Operator-set rates (``[[conversion.fixed_rates]]`` tables); always fresh."""


class PayoutPolicySettings(BaseModel):
    """Spend policy of one asset (``[custody.payout_policies.BTC]``).

    Amounts are decimal strings in the asset's units, never floats. An asset without a
    policy cannot be paid out at all.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    max_per_transaction: str | None = None
    """Largest single payout (``"0.5"``); empty: no limit."""
    max_per_day: str | None = None
    """Most paid out in any rolling 24 hours, this payout included; empty: no limit."""
    max_payouts_per_hour: int | None = Field(None, ge=1)
    """Velocity: most payouts in any rolling hour, this one included; empty: no limit."""
    approval_threshold: str | None = None
    """Payouts of at least this amount need approvals (``"0"``: every payout); empty: none."""
    approvals_required: int = Field(1, ge=1, le=20)
    """Distinct operators, other than the requester, who must approve above the threshold."""
    allowed_destinations: list[str] = []
    """Addresses payouts may go to."""
    require_allowlist: bool = True
    """Refuse destinations outside ``allowed_destinations``."""


class CustodySettings(BaseModel):
    """Custody: address pools, the Bitcoin network of hot keys, payout policies."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    network: Literal["mainnet", "testnet", "signet", "regtest"] = "mainnet"
    """Bitcoin network of new wallets (unless ``dpg wallet create --network``) and hot keys."""
    gap_limit: int = Field(1000, ge=1, le=1_000_000)
    """Alert (``custody.gap_exceeded``, a CLI warning) when more issued receiving addresses
    than this follow the last used one. 1000 is Bitcoin Core's keypool: BIP44's 20 would
    alert after every 21 unpaid invoices, and each invoice takes a fresh address."""
    payout_policies: dict[str, PayoutPolicySettings] = {}
    """Spend policy per asset code (``[custody.payout_policies."USDT-ETH"]``)."""


class TradingSettings(BaseModel):
    """The exchange: which pairs can run, who collects fees, how often orders expire."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    pairs_file: Path | None = None
    """Trading pairs definition replacing the built-in ``config/pairs.toml`` (same format).
    Pairs are opened by operators (``dpg book pairs add``); this file says which can be."""
    operator_id: str = Field("op", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    """Ledger owner id of the operator whose ``fees`` accounts collect trading fees."""
    expiry_interval_seconds: float = Field(1.0, gt=0, le=3600)
    """How often the node looks for orders past their ``expiresAt`` to expire them."""


class BitcoinChainSettings(BaseModel):
    """The Bitcoin node (Core or Knots JSON-RPC) payouts are funded from and broadcast to.

    Nothing here is needed to receive: addresses come from xpubs. Without ``rpc_url`` a
    Bitcoin payout cannot be signed or broadcast (the CLI says which setting to add).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    rpc_url: str = ""
    """JSON-RPC endpoint, e.g. ``http://127.0.0.1:8332`` (regtest ``:18443``). Empty: no
    Bitcoin node is configured."""
    rpc_user: str = ""
    """RPC user (``-rpcuser`` / ``-rpcauth``). Empty: authenticate with ``cookie_file``."""
    rpc_password: SecretStr | None = None
    """RPC password of ``rpc_user`` (prefer ``DPG_CHAINS__BITCOIN__RPC_PASSWORD``)."""
    cookie_file: Path | None = None
    """The node's ``.cookie`` file, read at each connection (it changes when the node
    restarts); used when ``rpc_user`` is empty."""
    network: Literal["mainnet", "testnet", "signet", "regtest"] | None = None
    """Chain the node must be on (checked before every first use). Empty: ``custody.network``."""
    timeout_seconds: float = Field(30.0, gt=0, le=600)
    """Longest wait for one RPC answer."""
    scan_timeout_seconds: float = Field(600.0, gt=0, le=3600)
    """Longest wait for ``scantxoutset``, which reads the whole UTXO set (minutes on mainnet)."""
    fee_target_blocks: int = Field(6, ge=1, le=1008)
    """Confirmation target of the fee estimate (``estimatesmartfee``), in blocks."""
    min_fee_rate: str = Field("1", pattern=r"^[0-9]{1,5}(\.[0-9]{1,3})?$")
    """Lowest fee rate paid, in sat/vB (decimal string; also when the node has no estimate)."""
    max_fee_rate: str = Field("500", pattern=r"^[0-9]{1,5}(\.[0-9]{1,3})?$")
    """Highest fee rate paid, in sat/vB: above it a payout waits instead of signing."""
    confirmations: int = Field(1, ge=1, le=100)
    """Confirmations after which a payment is credited in the ledger (BTCPay's "medium")."""
    reorg_limit: int = Field(6, ge=1, le=100)
    """Deepest reorganisation the watcher undoes on its own. A deeper one would rewrite
    history the node treated as settled: it is an incident that pauses the chain instead."""
    poll_interval_seconds: float = Field(2.0, gt=0, le=600)
    """How often the watcher asks the node for its tip (ZMQ, when set, wakes it earlier)."""
    zmq_url: str = Field("", pattern=r"^((tcp|ipc)://\S+)?$")
    """Where the node publishes ZMQ notifications (``-zmqpubhashblock`` / ``-zmqpubrawtx``,
    e.g. ``tcp://127.0.0.1:28332``): they wake the watcher before its poll interval. Empty:
    polling only."""
    treasury_address: str = Field("", pattern=r"^[A-Za-z0-9]{0,90}$")
    """Where ``dpg chain sweep bitcoin`` sends the confirmed outputs of the node's deposit
    addresses (an address of the chain's network, e.g. a cold wallet's; checked when
    sweeping). Empty: Bitcoin deposits are not swept."""


class EvmChainSettings(BaseModel):
    """One EVM chain's node (``[chains.evm.ethereum]``), named as assets name their network.

    Chains of the built-in registry (``config/chains.toml``: ethereum, polygon, bsc) take
    every field left empty here from it (chain id, native asset, token contracts, endpoints,
    confirmation policy); a field set here wins. Another chain needs ``chain_id`` and an RPC
    URL. With a ``chain_id`` other than the registry's (a testnet or a dev node under that
    name), the registry's endpoints and token contracts are not used.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    rpc_url: SecretStr | None = None
    """JSON-RPC endpoint; a secret because hosted providers put their API key in it. Empty:
    the first of ``rpc_urls``, else the registry's public endpoints."""
    rpc_urls: list[SecretStr] = []
    """More endpoints, tried in order when ``rpc_url`` is down, rate limited or untrusted
    (a head going backwards, missing blocks, blocks that do not link, another chain id)."""
    chain_id: int | None = Field(None, ge=1)
    """Chain id the node must serve (1 Ethereum, 137 Polygon, 56 BNB Chain, 31337 anvil).
    Empty: the registry's."""
    native_asset: str | None = None
    """Asset code of the chain's coin (``ETH``). Empty: the registry's, else the one coin
    asset whose network is this chain."""
    tokens: dict[str, Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$")]] = {}
    """ERC-20 contract per asset code on this chain (``"USDT-ETH" = "0xdAC1..."``), added
    to (or replacing) the registry's."""
    confirmations: Annotated[int, Field(ge=1, le=10_000)] | Literal["finalized", "safe"] | None = (
        None
    )
    """Depth at which a payment is credited (1: in a block), or ``"finalized"`` / ``"safe"``:
    at or below the block the chain's node tags so. Empty: the registry's (else 12)."""
    reorg_limit: int | None = Field(None, ge=1, le=10_000)
    """Deepest reorganisation the watcher undoes on its own; deeper pauses the chain as an
    incident. Empty: the registry's (else 64)."""
    block_time_seconds: float | None = Field(None, gt=0, le=3600)
    """Target block interval. Empty: the registry's (else 12)."""
    poll_interval_seconds: float | None = Field(None, gt=0, le=600)
    """How often the watcher asks for the head. Empty: the registry's (else a third of the
    block time, at least 1 s)."""
    log_range: int | None = Field(None, ge=1, le=100_000)
    """Most blocks one ``eth_getLogs`` request covers (halved while a provider refuses the
    size). Empty: the registry's (else 100)."""
    rate_limit_retries: int = Field(3, ge=0, le=10)
    """Retries, with exponential backoff, of a call an endpoint refused as rate limited
    (HTTP 429) before the next endpoint is tried."""
    endpoint_cooldown_seconds: float = Field(30.0, gt=0, le=3600)
    """How long an endpoint that failed or misbehaved is left aside (doubling with each
    failure in a row, up to ten times this)."""
    timeout_seconds: float = Field(30.0, gt=0, le=600)
    """Longest wait for one RPC answer."""
    gas_margin_percent: int = Field(25, ge=0, le=500)
    """Added to the gas estimate (unused gas is refunded; too little fails the transfer)."""
    max_fee_per_gas_gwei: str | None = Field(None, pattern=r"^[0-9]{1,12}(\.[0-9]{1,9})?$")
    """Highest max fee per gas, in gwei (decimal string); empty: no ceiling."""
    treasury_address: str = Field("", pattern=r"^(0x[0-9a-fA-F]{40})?$")
    """Where ``dpg chain sweep`` sends this chain's deposits (its coin and its tokens).
    Empty: the chain is not swept, unless ``treasury_addresses`` names its asset."""
    treasury_addresses: dict[str, Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$")]] = {}
    """Treasury per asset code, winning over ``treasury_address``
    (``"USDT-ETH" = "0x..."``)."""
    gas_source: str = Field("", pattern=r"^(hot:\S{1,136})?$")
    """The HSM hot key (``hot:<label>``) that sends gas to a deposit address before its
    tokens are swept. Empty: token sweeps use only the gas already at the address."""


class ChainsSettings(BaseModel):
    """Chain nodes the node funds payouts from and broadcasts them to (``[chains]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    bitcoin: BitcoinChainSettings = BitcoinChainSettings()
    """The Bitcoin node (``[chains.bitcoin]``)."""
    evm: dict[str, EvmChainSettings] = {}
    """EVM nodes by network name (``ethereum``, ``polygon``, ``bsc``, as in the assets)."""
    rebroadcast_minutes: float = Field(10.0, gt=0, le=1440)
    """How often the node re-sends its own broadcast transactions (payouts, sweeps) that no
    block has mined yet: the same signed bytes, so a node that has them changes nothing."""


class BackupSettings(BaseModel):
    """Encrypted backups: the schedule, where they go, how many are kept, the key.

    The key never is a setting: a passphrase comes from ``passphrase_file`` (mode 0600) or
    the variable named by ``passphrase_env``; an HSM key stays in the HSM, and the node holds
    only its public half (``dpg backup key create`` writes it), enough to encrypt.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    interval_minutes: int = Field(15, ge=0, le=7 * 24 * 60)
    """Minutes between scheduled backups the node makes while it runs; 0 turns them off
    (with several node processes, leave it on in one only)."""
    directory: Path | None = None
    """Where backups are written and listed. Empty: DATA_DIR/backups. Prefer another disk."""
    keep_hourly: int = Field(24, ge=0, le=100_000)
    """Keep the newest backup of each of this many most recent hours that have one."""
    keep_daily: int = Field(7, ge=0, le=100_000)
    """Keep the newest backup of each of this many most recent days (UTC) that have one."""
    keep_weekly: int = Field(8, ge=0, le=100_000)
    """Keep the newest backup of each of this many most recent ISO weeks that have one."""
    key_source: Literal["passphrase", "hsm"] = "passphrase"
    """``passphrase``: a key derived (scrypt) from the operator's passphrase; ``hsm``: an
    HSM-held P-256 key pair (``dpg backup key create``); restores then need the HSM."""
    passphrase_file: Path | None = None
    """File holding the backup passphrase (mode 0600); wins over ``passphrase_env``."""
    passphrase_env: str = Field("DPG_BACKUP_PASSPHRASE", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Environment variable holding the backup passphrase."""
    hsm_key_label: str = Field("dpg-backup-1", pattern=r"^[A-Za-z0-9][A-Za-z0-9:._/+-]{0,63}$")
    """Label of the HSM key pair backups are encrypted to (``key_source = "hsm"``)."""
    hsm_public_key: Path | None = None
    """PEM file of that key's public half. Empty: DATA_DIR/backup-key.pem."""
    verify: bool = True
    """Check each new backup before keeping it: integrity check and ledger verification of
    the copy, then a read-back of the encrypted file."""


class DoctorSettings(BaseModel):
    """What ``dpg doctor`` compares against."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    time_url: str = ""
    """HTTPS URL whose ``Date`` header is a time reference for the clock check (1 s
    resolution). Empty: only PostgreSQL's clock is compared, when the database is one."""
    max_clock_skew_seconds: float = Field(5.0, gt=0, le=3600)
    """Largest clock difference accepted, beyond the measurement's own uncertainty."""
    min_free_disk_mb: int = Field(1024, ge=0)
    """Least free space wanted on the data and backup disks, beyond room for one backup."""


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
    telemetry: TelemetrySettings = TelemetrySettings()
    """OpenTelemetry traces (off unless ``otlp_endpoint`` is set)."""
    conversion: ConversionSettings = ConversionSettings()
    """Asset conversion: terms, quote lifetime, rate sources, limits' reference currency."""
    hsm: HsmSettings = HsmSettings()
    """The signer's HSM (PKCS#11); used only by the signer and ``dpg hsm``."""
    custody: CustodySettings = CustodySettings()
    """Custody wallets, address pools and payout policies."""
    trading: TradingSettings = TradingSettings()
    """The exchange: pairs definition, fee collector, order expiry."""
    chains: ChainsSettings = ChainsSettings()
    """Chain nodes that fund and broadcast payouts (empty: none; payouts cannot be signed)."""
    backup: BackupSettings = BackupSettings()
    """Scheduled encrypted backups, retention and the backup key's source."""
    doctor: DoctorSettings = DoctorSettings()
    """Thresholds and time reference of ``dpg doctor``."""
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
