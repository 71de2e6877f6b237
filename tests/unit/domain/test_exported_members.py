"""The package's public surface is exactly ``__all__`` (httpx's exported-members test)."""

from __future__ import annotations

import types

import dpgnode
from dpgnode import errors

INCLUDED_PRIVATE_MEMBERS = {"__version__"}


def test_all_lists_every_public_member_in_order_when_package_is_imported() -> None:
    public = [
        name
        for name, value in vars(dpgnode).items()
        if (not name.startswith("_") or name in INCLUDED_PRIVATE_MEMBERS)
        and not isinstance(value, types.ModuleType)
    ]
    assert dpgnode.__all__ == sorted(public)


def test_every_exported_error_is_a_dpg_error_with_its_own_code_when_listed() -> None:
    exported = [getattr(dpgnode, name) for name in dpgnode.__all__ if name.endswith("Error")]
    assert all(issubclass(cls, errors.DpgError) for cls in exported)
    codes = [cls.code for cls in exported]
    assert len(codes) == len(set(codes))


def test_version_is_a_string_when_package_is_imported() -> None:
    assert isinstance(dpgnode.__version__, str)
    assert dpgnode.__version__.count(".") >= 2
