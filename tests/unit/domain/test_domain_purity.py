"""The domain stays pure: stdlib, sortedcontainers, dpgnode.errors and itself; no clock reads.

Parsed with ``ast`` rather than imported, so the check also covers code paths no test runs.
import-linter enforces the layers too; this test adds the stdlib allow-list and the ban on
reading clocks, randomness and the environment, which import-linter cannot see.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import dpgnode.domain

DOMAIN_DIR = Path(dpgnode.domain.__file__).parent
MODULES = sorted(DOMAIN_DIR.rglob("*.py"))
ALLOWED_THIRD_PARTY = {"sortedcontainers"}
# Pure-compute cryptography for dpgnode.domain.custody (no I/O): secp256k1 (coincurve),
# Keccak-256 (eth_hash), BIP39 word lists (mnemonic), RIPEMD-160 fallback (pycryptodome).
ALLOWED_THIRD_PARTY |= {"coincurve", "eth_hash", "mnemonic", "Crypto"}
ALLOWED_PROJECT = ("dpgnode.errors", "dpgnode.domain")
# stdlib modules that mean I/O, time, randomness or the environment
FORBIDDEN_STDLIB = {
    "asyncio",
    "http",
    "logging",
    "os",
    "pathlib",
    "random",
    "secrets",
    "shutil",
    "socket",
    "sqlite3",
    "subprocess",
    "sys",
    "threading",
    "time",
    "urllib",
    "uuid",
}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time_ns", "urandom", "getenv"}


def _imports(tree: ast.AST, module: str) -> list[str]:
    """Absolute names of every module imported anywhere in ``tree``."""
    package = module.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.append(".".join([*base, node.module or ""]).rstrip("."))
            else:
                names.append(node.module or "")
    return names


def _module_name(path: Path) -> str:
    relative = path.relative_to(DOMAIN_DIR.parent.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_allowed(name: str) -> bool:
    top = name.split(".")[0]
    if name == "__future__":
        return True
    if top == "dpgnode":
        return any(name == p or name.startswith(p + ".") for p in ALLOWED_PROJECT)
    if top in ALLOWED_THIRD_PARTY:
        return True
    return top in sys.stdlib_module_names and top not in FORBIDDEN_STDLIB


def test_domain_has_modules_when_collected() -> None:
    assert len(MODULES) >= 5


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_module_imports_only_the_allow_list_when_parsed(path: Path) -> None:
    module = _module_name(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    offending = [name for name in _imports(tree, module) if not _is_allowed(name)]
    assert offending == [], f"{module} imports {offending}"


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_module_reads_no_clock_randomness_or_environment_when_parsed(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    calls = [
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in FORBIDDEN_CALLS
    ]
    assert calls == [], f"{path.name} calls {calls}"


def test_allow_list_refuses_infrastructure_when_checked() -> None:
    # The checker itself must bite: these are the imports the domain must never have.
    for name in ("sqlalchemy", "litestar", "httpx", "dpgnode.adapters.storage", "os", "random"):
        assert not _is_allowed(name), name
    for name in ("decimal", "dataclasses", "sortedcontainers", "dpgnode.domain.money"):
        assert _is_allowed(name), name
