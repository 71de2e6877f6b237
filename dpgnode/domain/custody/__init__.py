"""Custody domain: keys, derivation, addresses, payment URIs, transactions and signing policy.

Pure computation only (no I/O, no clocks, no randomness): callers supply entropy, seeds and
chain data. Import the module you need (``dpgnode.domain.custody.extkeys``, ``.addresses``,
``.uris`` ...); this package deliberately re-exports nothing.
"""
