"""Operator upkeep wired over the real adapters: backups, their schedule, ``dpg doctor``.

A composition layer beside :mod:`dpgnode.node` (which starts the backup scheduler): it
builds adapters from settings like the node does. It never reaches the HSM: what needs the
token (opening an HSM-keyed backup, the doctor's HSM check) is passed in by the caller, which
gets it from :mod:`dpgnode.signer` (RELIABILITY.md R22).
"""
