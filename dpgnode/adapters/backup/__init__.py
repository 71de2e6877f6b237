"""Encrypted backups: the container format, key slots, database copies and the directory.

Used by :mod:`dpgnode.maintenance` (``dpg backup`` and the node's scheduled backups).
"""
