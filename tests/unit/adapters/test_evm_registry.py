"""The EVM chain registry (``config/chains.toml``) and its merge with ``[chains.evm]`` settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dpgnode.adapters.assets import load_registry as load_assets
from dpgnode.adapters.chains.evm_registry import (
    DEFAULT_CONFIRMATIONS,
    evm_chain_specs,
    load_registry,
    registry_problems,
)
from dpgnode.domain.custody.evm import parse_evm_address
from dpgnode.domain.money import AssetKind
from dpgnode.errors import ConfigError
from dpgnode.settings import ChainsSettings, load_settings

ASSETS = load_assets()
USDT_ETH = "0xdAC17F958D2ee523a2206206994597C13D831ec7"


def specs(evm: dict[str, Any]) -> dict[str, Any]:
    return evm_chain_specs(ChainsSettings.model_validate({"evm": evm}), ASSETS)


class TestBuiltinRegistry:
    def test_registry_agrees_with_asset_registry_when_loaded(self) -> None:
        registry = load_registry()
        assert {name: chain.chain_id for name, chain in registry.items()} == {
            "ethereum": 1, "polygon": 137, "bsc": 56}
        assert {name: chain.native_asset for name, chain in registry.items()} == {
            "ethereum": "ETH", "polygon": "POL", "bsc": "BNB"}
        assert registry_problems(registry, ASSETS) == []

    def test_token_decimals_equal_assets_toml_when_compared_one_by_one(self) -> None:
        tokens = {t.asset: t.decimals for chain in load_registry().values() for t in chain.token}
        assert tokens == {"USDT-ETH": 6, "USDC-ETH": 6, "USDT-POLYGON": 6, "USDC-POLYGON": 6,
                          "USDT-BSC": 18, "USDC-BSC": 18}
        assert tokens == {code: ASSETS[code].decimals for code in tokens}

    def test_contracts_are_checksummed_and_distinct(self) -> None:
        contracts = [t.contract for chain in load_registry().values() for t in chain.token]
        assert all(parse_evm_address(c).checksummed for c in contracts)
        assert len({c.lower() for c in contracts}) == len(contracts)

    def test_every_token_asset_of_a_registry_chain_has_a_contract(self) -> None:
        registry = load_registry()
        listed = {t.asset for chain in registry.values() for t in chain.token}
        networked = {code for code, asset in ASSETS.items()
                     if asset.kind is AssetKind.TOKEN and asset.network in registry}
        assert listed == networked

    def test_decimals_disagreement_reported_when_registry_is_wrong(self) -> None:
        text = """
[chain.ethereum]
chain_id = 1
native_asset = "ETH"
[[chain.ethereum.token]]
asset = "USDT-ETH"
contract = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
decimals = 18
"""
        problems = registry_problems(load_registry(text), ASSETS)
        assert problems == ["chain.ethereum.token USDT-ETH: decimals 18 differ from the asset "
                            "registry's 6"]

    def test_malformed_registry_names_the_field(self) -> None:
        with pytest.raises(ConfigError, match=r"chain\.x\.chain_id"):
            load_registry('[chain.x]\nchain_id = 0\nnative_asset = "ETH"\n')
        with pytest.raises(ConfigError, match="not valid TOML"):
            load_registry("[chain")


class TestMerge:
    def test_registry_fills_every_field_left_empty(self) -> None:
        spec = specs({"polygon": {"rpc_url": "https://rpc.example/key"}})["polygon"]
        assert (spec.chain_id, spec.native_asset, spec.finality_tag) == (137, "POL", "finalized")
        assert spec.policy.finalized
        assert spec.policy.reorg_limit == 256
        assert spec.rpc_urls == ("https://rpc.example/key",)
        assert spec.token_contracts() == {
            "USDT-POLYGON": "0xc2132D05D31c914a87C6611C10748AEb04B58e8F",
            "USDC-POLYGON": "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359"}
        assert "rpc.example" not in repr(spec)  # URLs may carry API keys

    def test_registry_endpoints_used_when_none_configured(self) -> None:
        assert specs({"bsc": {}})["bsc"].rpc_urls == ("https://bsc-dataseed.bnbchain.org",)

    def test_settings_win_over_registry(self) -> None:
        spec = specs({"ethereum": {
            "rpc_url": "http://a", "rpc_urls": ["http://b"], "confirmations": 20,
            "reorg_limit": 30, "log_range": 3, "poll_interval_seconds": 9,
            "tokens": {"USDT-ETH": USDT_ETH.lower()},
        }})["ethereum"]
        assert spec.rpc_urls == ("http://a", "http://b")
        assert (spec.finality_tag, spec.policy.confirmations, spec.policy.finalized) == (
            None, 20, False)
        assert (spec.policy.reorg_limit, spec.log_range, spec.poll_interval_seconds) == (30, 3, 9)
        assert spec.token_contracts()["USDT-ETH"] == USDT_ETH  # normalised to EIP-55

    def test_other_chain_id_inherits_no_contracts_or_endpoints(self) -> None:
        with pytest.raises(ConfigError, match=r"chains\.evm\.polygon\.rpc_url"):
            specs({"polygon": {"chain_id": 80002}})
        spec = specs({"ethereum": {"rpc_url": "http://127.0.0.1:8545", "chain_id": 31337}})
        assert spec["ethereum"].tokens == ()
        assert spec["ethereum"].policy.finalized  # the policy still comes from the registry

    def test_chain_outside_registry_needs_chain_id_and_url(self) -> None:
        with pytest.raises(ConfigError) as caught:
            specs({"arbitrum": {}})
        message = caught.value.message
        assert "chains.evm.arbitrum.chain_id" in message
        assert "chains.evm.arbitrum.rpc_url" in message
        assert "chains.evm.arbitrum.native_asset" in message

    def test_chain_outside_registry_gets_defaults(self) -> None:
        evm = {"ethereum": {"rpc_url": "http://x", "chain_id": 11155111, "native_asset": "ETH",
                            "block_time_seconds": 12}}
        spec = specs(evm)["ethereum"]
        assert spec.policy.confirmations == 1  # the registry's "finalized" policy (1 unused)
        custom = ChainsSettings.model_validate({"evm": evm})
        spec = evm_chain_specs(custom, ASSETS, registry={})["ethereum"]
        assert (spec.policy.confirmations, spec.finality_tag) == (DEFAULT_CONFIRMATIONS, None)
        assert spec.poll_interval_seconds == 4.0

    def test_every_problem_listed_when_several_chains_are_wrong(self) -> None:
        with pytest.raises(ConfigError) as caught:
            specs({
                "ethereum": {"rpc_url": "http://a", "tokens": {"USDT-BSC": USDT_ETH}},
                "bsc": {"native_asset": "ETH", "max_fee_per_gas_gwei": "0"},
            })
        message = caught.value.message
        assert "chains.evm.ethereum.tokens.USDT-BSC: USDT-BSC is not a token asset of network " \
               "ethereum" in message
        assert "chains.evm.bsc.native_asset: ETH is not a coin asset of network bsc" in message
        assert "chains.evm.bsc.max_fee_per_gas_gwei must be positive" in message

    def test_one_contract_for_two_assets_refused(self) -> None:
        with pytest.raises(ConfigError, match="the contract of USDT-ETH too"):
            specs({"ethereum": {"rpc_url": "http://a", "tokens": {"USDC-ETH": USDT_ETH}}})


class TestSettingsFile:
    def test_empty_chain_table_and_finality_policy_parse_from_toml(self, tmp_path: Path) -> None:
        (tmp_path / "dpg.toml").write_text(
            '[chains.evm.bsc]\n'
            '[chains.evm.ethereum]\n'
            'rpc_url = "https://eth.example/v3/key"\n'
            'rpc_urls = ["https://backup.example"]\n'
            'confirmations = "safe"\n'
        )
        settings = load_settings(tmp_path)
        merged = evm_chain_specs(settings.chains, ASSETS)
        assert merged["ethereum"].finality_tag == "safe"
        assert merged["ethereum"].rpc_urls == ("https://eth.example/v3/key",
                                               "https://backup.example")
        assert merged["bsc"].chain_id == 56

    def test_confirmations_out_of_range_refused(self, tmp_path: Path) -> None:
        (tmp_path / "dpg.toml").write_text('[chains.evm.bsc]\nconfirmations = "latest"\n')
        with pytest.raises(ConfigError, match=r"chains\.evm\.bsc\.confirmations"):
            load_settings(tmp_path)
