"""Wire schemas: msgspec structs with camelCase names; amounts are decimal strings."""
