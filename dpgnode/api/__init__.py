"""The HTTP API (Litestar): routes, guards, schemas, error mapping."""
