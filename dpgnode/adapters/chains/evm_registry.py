"""The EVM chain registry (``config/chains.toml``) merged with the operator's ``[chains.evm]``.

What a configured chain runs with is one :class:`EvmChainSpec`: every field the operator set
in ``[chains.evm.<name>]`` wins, every other comes from the registry entry of that name, then
from the defaults below. Rules kept here:

- a token's decimals are the asset registry's; the chain registry states them too, and a
  disagreement refuses to start (a wrong decimals count would credit 10^12 times too much or
  too little);
- a chain configured with another ``chain_id`` than its registry entry (a testnet or a dev
  node under a mainnet name) does not inherit the registry's endpoints or token contracts:
  mainnet contract addresses mean nothing there;
- every token is an asset of kind ``token`` whose network is the chain; the native asset a
  ``crypto`` asset of the chain;
- every problem is reported at once, naming the setting (``chains.evm.polygon.tokens``).

Endpoint URLs may hold a provider's API key: they are kept out of ``repr``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from dpgnode.domain.chains.payments import ConfirmationPolicy
from dpgnode.domain.custody.evm import parse_evm_address
from dpgnode.domain.money import AssetKind, AssetRegistry, parse_units
from dpgnode.errors import ConfigError, DpgError
from dpgnode.settings import ChainsSettings, EvmChainSettings

FinalityTag = Literal["finalized", "safe"]

DEFAULT_CONFIRMATIONS = 12
DEFAULT_REORG_LIMIT = 64
DEFAULT_BLOCK_TIME_SECONDS = 12.0
DEFAULT_LOG_RANGE = 100
_GWEI_DECIMALS = 9


class RegistryToken(BaseModel):
    """One ``[[chain.<name>.token]]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    asset: str
    contract: Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$")]
    decimals: int = Field(ge=0, le=36)


class RegistryChain(BaseModel):
    """One ``[chain.<name>]`` table of ``config/chains.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chain_id: int = Field(ge=1)
    native_asset: str
    rpc_urls: list[str] = []
    confirmations: Annotated[int, Field(ge=1, le=10_000)] | FinalityTag = DEFAULT_CONFIRMATIONS
    reorg_limit: int = Field(DEFAULT_REORG_LIMIT, ge=1, le=10_000)
    block_time_seconds: float = Field(DEFAULT_BLOCK_TIME_SECONDS, gt=0, le=3600)
    poll_interval_seconds: float | None = Field(None, gt=0, le=600)
    log_range: int = Field(DEFAULT_LOG_RANGE, ge=1, le=100_000)
    token: list[RegistryToken] = []


class _RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chain: dict[str, RegistryChain]


@dataclass(frozen=True, slots=True)
class TokenSpec:
    """A token the chain's watcher follows: its asset, contract (EIP-55) and decimals."""

    asset: str
    contract: str
    decimals: int


@dataclass(frozen=True, slots=True)
class EvmChainSpec:
    """Everything one configured EVM chain runs with (see the module docstring)."""

    name: str
    chain_id: int
    native_asset: str
    rpc_urls: tuple[str, ...] = field(repr=False)
    policy: ConfirmationPolicy
    finality_tag: FinalityTag | None
    """The block tag ``finalized_height`` reads; ``None`` where depth alone counts."""
    block_time_seconds: float
    poll_interval_seconds: float
    log_range: int
    tokens: tuple[TokenSpec, ...] = ()
    timeout_seconds: float = 30.0
    rate_limit_retries: int = 3
    endpoint_cooldown_seconds: float = 30.0
    gas_margin_percent: int = 25
    max_fee_per_gas: int | None = None
    """Ceiling of the max fee per gas in wei; ``None``: none."""

    def token_contracts(self) -> dict[str, str]:
        """Asset code -> contract."""
        return {token.asset: token.contract for token in self.tokens}


def builtin_registry_text() -> str:
    """The chain registry shipped with the package."""
    return (files("dpgnode") / "config" / "chains.toml").read_text()


def load_registry(text: str | None = None, *, source: str = "config/chains.toml") -> dict[
    str, RegistryChain
]:
    """The chains of a registry file (default: the built-in one), by name.

    Raises:
        ConfigError: not TOML, or a table or field that is unknown, missing or malformed.
    """
    try:
        data = tomllib.loads(text if text is not None else builtin_registry_text())
        return dict(_RegistryFile.model_validate(data).chain)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from exc
    except PydanticValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"{source}: invalid chain registry:\n" + "\n".join(problems),
                          details={"problems": len(problems)}) from exc


def registry_problems(registry: Mapping[str, RegistryChain], assets: AssetRegistry) -> list[str]:
    """Registry entries that contradict the asset registry (native asset, token decimals)."""
    problems: list[str] = []
    for name, chain in registry.items():
        problems.extend(_native_problems(name, chain.native_asset, assets, f"chain.{name}"))
        for token in chain.token:
            where = f"chain.{name}.token {token.asset}"
            problems.extend(_token_problems(name, token.asset, assets, where))
            asset = assets.get(token.asset)
            if asset is not None and asset.decimals != token.decimals:
                problems.append(f"{where}: decimals {token.decimals} differ from the asset "
                                f"registry's {asset.decimals}")
    return problems


def evm_chain_specs(
    settings: ChainsSettings, assets: AssetRegistry,
    registry: Mapping[str, RegistryChain] | None = None,
) -> dict[str, EvmChainSpec]:
    """The specs of every chain in ``settings.evm``, merged with the registry.

    Raises:
        ConfigError: listing every problem, each naming its setting.
    """
    known = load_registry() if registry is None else registry
    specs: dict[str, EvmChainSpec] = {}
    problems: list[str] = []
    for name, configured in settings.evm.items():
        try:
            specs[name] = merge_chain(name, configured, known.get(name), assets)
        except ConfigError as exc:
            problems.append(exc.message)
    if problems:
        raise ConfigError("invalid EVM chain settings:\n" + "\n".join(problems),
                          details={"problems": len(problems)})
    return specs


def merge_chain(
    name: str, configured: EvmChainSettings, entry: RegistryChain | None, assets: AssetRegistry,
) -> EvmChainSpec:
    """One chain's spec (see the module docstring); ``ConfigError`` lists its problems."""
    where = f"chains.evm.{name}"
    problems: list[str] = []
    chain_id = configured.chain_id or (entry.chain_id if entry is not None else None)
    if chain_id is None:
        problems.append(f"{where}.chain_id: required for a chain outside the registry")
    inherit = entry is not None and chain_id == entry.chain_id
    urls = [u.get_secret_value() for u in
            ([configured.rpc_url] if configured.rpc_url is not None else [])
            + list(configured.rpc_urls)]
    if not urls and inherit and entry is not None:
        urls = list(entry.rpc_urls)
    if not urls:
        problems.append(f"{where}.rpc_url: no RPC endpoint configured for {name}")
    native = configured.native_asset or (entry.native_asset if entry is not None else None)
    native = native or _only_coin(name, assets)
    if native is None:
        problems.append(f"{where}.native_asset: no coin asset of network {name}; set it")
    else:
        problems.extend(_native_problems(name, native, assets, f"{where}.native_asset"))
    tokens = _tokens(name, configured, entry if inherit else None, assets, problems)
    ceiling = _ceiling(where, configured.max_fee_per_gas_gwei, problems)
    if problems or chain_id is None or native is None:
        raise ConfigError("\n".join(problems))
    confirmations = configured.confirmations or (
        entry.confirmations if entry is not None else DEFAULT_CONFIRMATIONS)
    reorg_limit = configured.reorg_limit or (
        entry.reorg_limit if entry is not None else DEFAULT_REORG_LIMIT)
    block_time = configured.block_time_seconds or (
        entry.block_time_seconds if entry is not None else DEFAULT_BLOCK_TIME_SECONDS)
    poll = configured.poll_interval_seconds or (
        entry.poll_interval_seconds if entry is not None else None) or max(1.0, block_time / 3)
    log_range = configured.log_range or (
        entry.log_range if entry is not None else DEFAULT_LOG_RANGE)
    tag: FinalityTag | None = None if isinstance(confirmations, int) else confirmations
    policy = ConfirmationPolicy(
        confirmations=confirmations if isinstance(confirmations, int) else 1,
        reorg_limit=reorg_limit, finalized=tag is not None,
    )
    return EvmChainSpec(
        name=name, chain_id=chain_id, native_asset=native, rpc_urls=tuple(urls), policy=policy,
        finality_tag=tag, block_time_seconds=block_time, poll_interval_seconds=poll,
        log_range=log_range, tokens=tokens, timeout_seconds=configured.timeout_seconds,
        rate_limit_retries=configured.rate_limit_retries,
        endpoint_cooldown_seconds=configured.endpoint_cooldown_seconds,
        gas_margin_percent=configured.gas_margin_percent, max_fee_per_gas=ceiling,
    )


def _tokens(
    name: str, configured: EvmChainSettings, entry: RegistryChain | None,
    assets: AssetRegistry, problems: list[str],
) -> tuple[TokenSpec, ...]:
    contracts = {t.asset: t.contract for t in entry.token} if entry is not None else {}
    contracts.update(configured.tokens)
    tokens: list[TokenSpec] = []
    seen: dict[str, str] = {}
    for code, contract in contracts.items():
        where = f"chains.evm.{name}.tokens.{code}"
        found = _token_problems(name, code, assets, where)
        if found:
            problems.extend(found)
            continue
        try:
            text = parse_evm_address(contract, field="token").text
        except DpgError as exc:
            problems.append(f"{where}: {exc.message}")
            continue
        if text.lower() in seen:
            problems.append(f"{where}: the contract of {seen[text.lower()]} too")
            continue
        seen[text.lower()] = code
        tokens.append(TokenSpec(code, text, assets.require(code).decimals))
    return tuple(tokens)


def _token_problems(name: str, code: str, assets: AssetRegistry, where: str) -> list[str]:
    asset = assets.get(code)
    if asset is None or asset.kind is not AssetKind.TOKEN or asset.network != name:
        return [f"{where}: {code} is not a token asset of network {name}"]
    return []


def _native_problems(name: str, code: str, assets: AssetRegistry, where: str) -> list[str]:
    asset = assets.get(code)
    if asset is None or asset.kind is not AssetKind.CRYPTO or asset.network != name:
        return [f"{where}: {code} is not a coin asset of network {name}"]
    return []


def _only_coin(name: str, assets: AssetRegistry) -> str | None:
    coins = [code for code, asset in assets.items()
             if asset.kind is AssetKind.CRYPTO and asset.network == name]
    return coins[0] if len(coins) == 1 else None


def _ceiling(where: str, gwei: str | None, problems: list[str]) -> int | None:
    if gwei is None:
        return None
    try:
        ceiling = parse_units(gwei, _GWEI_DECIMALS)
    except DpgError as exc:
        problems.append(f"{where}.max_fee_per_gas_gwei: {exc.message}")
        return None
    if ceiling <= 0:
        problems.append(f"{where}.max_fee_per_gas_gwei must be positive")
        return None
    return ceiling
