"""Loads the asset registry: the built-in ``config/assets.toml`` plus operator additions."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from importlib.resources import files

from dpgnode.domain.money import Asset, AssetKind, AssetRegistry
from dpgnode.settings import AssetSettings


def builtin_assets() -> list[Asset]:
    data = tomllib.loads((files("dpgnode") / "config" / "assets.toml").read_text())
    return [
        Asset(a["code"], a["decimals"], a.get("name", ""), AssetKind(a.get("kind", "crypto")),
              a.get("network", ""))
        for a in data["asset"]
    ]


def load_registry(extra: Iterable[AssetSettings] = ()) -> AssetRegistry:
    assets = builtin_assets()
    assets.extend(
        Asset(a.code, a.decimals, a.name, AssetKind(a.kind), a.network) for a in extra
    )
    return AssetRegistry(assets)
