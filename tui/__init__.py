"""The terminal dashboard (``dpg dashboard``), a Textual app over the node's HTTP API.

It talks to a running node only through :mod:`dpgnode.client` (import-linter keeps it
so), never by opening the database: the same dashboard watches a local node, a remote one
through an SSH tunnel, or several processes behind PostgreSQL.
"""
