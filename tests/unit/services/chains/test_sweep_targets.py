"""Which chains and assets a sweep covers, from ``[chains]`` settings; bad selectors refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dpgnode.adapters.assets import load_registry
from dpgnode.domain.custody.networks import Network
from dpgnode.errors import ConfigError, ValidationError
from dpgnode.node import sweep_targets
from dpgnode.services.chains.outgoing import OutgoingChain
from dpgnode.services.chains.sweep_plan import SweepPlanner
from dpgnode.settings import load_settings

TREASURY = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
OTHER = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
BTC_TREASURY = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


def planner(tmp_path: Path, chains: dict[str, Any]) -> SweepPlanner:
    settings = load_settings(tmp_path, overrides={"chains": chains})
    assets = load_registry(settings.assets)
    # selected() reads settings and the registry only: no custody store is needed.
    return SweepPlanner(sweep_targets(settings, assets), None, assets,  # type: ignore[arg-type]
                        Network.REGTEST)


def test_chain_treasury_covers_its_coin_and_tokens_with_tokens_first(tmp_path: Path) -> None:
    found = planner(tmp_path, {"evm": {"ethereum": {"chain_id": 1, "treasury_address": TREASURY,
                                                    "gas_source": "hot:gas"}}})
    pairs = [(t.chain, asset) for t, asset in found.selected("ethereum")]
    assert pairs == [("ethereum", "USDC-ETH"), ("ethereum", "USDT-ETH"), ("ethereum", "ETH")]
    assert found.targets["ethereum"].gas_source == "hot:gas"


def test_per_asset_treasury_wins_over_the_chains(tmp_path: Path) -> None:
    found = planner(tmp_path, {"evm": {"ethereum": {
        "chain_id": 1, "treasury_address": TREASURY,
        "treasury_addresses": {"USDT-ETH": OTHER}}}})
    assert found.targets["ethereum"].treasury["USDT-ETH"] == OTHER
    assert found.targets["ethereum"].treasury["ETH"] == TREASURY


def test_only_the_named_assets_are_swept_when_the_chain_has_no_treasury(tmp_path: Path) -> None:
    found = planner(tmp_path, {"evm": {"ethereum": {
        "chain_id": 1, "treasury_addresses": {"USDT-ETH": OTHER}}}})
    assert [a for _, a in found.selected(None)] == ["USDT-ETH"]
    with pytest.raises(ConfigError, match=r"chains\.evm\.ethereum\.treasury_address"):
        found.selected("ETH")


def test_everything_with_a_treasury_is_selected_when_no_selector_is_given(
    tmp_path: Path,
) -> None:
    found = planner(tmp_path, {"bitcoin": {"treasury_address": BTC_TREASURY},
                               "evm": {"ethereum": {"chain_id": 1}}})
    assert [(t.family, a) for t, a in found.selected(None)] == [("bitcoin", "BTC")]


def test_treasury_for_an_asset_of_another_chain_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="USDT-POLYGON does not move on ethereum"):
        planner(tmp_path, {"evm": {"ethereum": {
            "chain_id": 1, "treasury_addresses": {"USDT-POLYGON": OTHER}}}})


def test_unknown_selector_names_the_argument(tmp_path: Path) -> None:
    found = planner(tmp_path, {"bitcoin": {"treasury_address": BTC_TREASURY}})
    with pytest.raises(ValidationError) as caught:
        found.selected("dogecoin")
    assert caught.value.details["field"] == "target"


def test_chain_without_a_coin_asset_has_no_outgoing_transactions_to_follow(
    tmp_path: Path,
) -> None:
    assets = load_registry(load_settings(tmp_path).assets)
    ethereum = OutgoingChain.of("ethereum", "evm", 64, assets)
    assert ethereum is not None
    assert (ethereum.native_asset, ethereum.fee_from_receipt) == ("ETH", True)
    assert set(ethereum.assets) == {"ETH", "USDT-ETH", "USDC-ETH"}
    bitcoin = OutgoingChain.of("bitcoin", "bitcoin", 6, assets)
    assert bitcoin is not None
    assert not bitcoin.fee_from_receipt
    assert OutgoingChain.of("nowhere", "evm", 6, assets) is None
