"""Default configuration files shipped with the node (asset registry, example dpg.toml)."""
