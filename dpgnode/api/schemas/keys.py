from __future__ import annotations

from dpgnode.api.schemas.base import Input, Output


class ApiKeyData(Output):
    api_key: str
    """``GET api-keys/current``: the key's id (never its secret). ``POST api-keys``: the
    new secret, shown this once."""
    label: str
    permissions: list[str]


class CreateApiKeyRequest(Input):
    permissions: list[str]
    label: str | None = None
