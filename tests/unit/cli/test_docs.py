"""Every command and option has help text, and every command is in docs/cli.md.

Like sqlite-utils' ``tests/test_docs.py``: the reference cannot silently fall behind the CLI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from dpgnode.cli.main import app

DOCS = Path(__file__).resolve().parents[3] / "docs" / "cli.md"


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


COMMANDS = list(_walk(typer.main.get_command(app)))
LEAVES = [(path, command) for path, command in COMMANDS if not getattr(command, "commands", {})]


def _ids(items: list[tuple[tuple[str, ...], Any]]) -> list[str]:
    return [" ".join(("dpg", *path)) for path, _ in items]


def test_cli_has_every_command_group_of_the_issue() -> None:
    assert {" ".join(path) for path, _ in LEAVES} >= {
        "init", "node start", "config show", "config validate", "db upgrade", "db current",
        "db check", "ledger verify", "ledger balances", "ledger statement", "ledger post",
        "ledger reverse", "store create", "store list", "apikey create", "apikey list",
        "apikey revoke",
    }


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=_ids(COMMANDS))
def test_command_has_help_when_listed(path: tuple[str, ...], command: Any) -> None:
    assert (command.help or "").strip(), f"dpg {' '.join(path)} has no help text"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=_ids(COMMANDS))
def test_every_parameter_has_help_when_command_is_listed(
    path: tuple[str, ...], command: Any
) -> None:
    missing = [p.name for p in command.params if not (getattr(p, "help", None) or "").strip()]
    assert missing == [], f"dpg {' '.join(path)}: no help for {missing}"


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=_ids(LEAVES))
def test_command_has_examples_when_it_is_a_leaf(path: tuple[str, ...], command: Any) -> None:
    assert "Examples:" in command.help
    assert f"dpg {' '.join(path)}" in command.help


@pytest.mark.parametrize(("path", "command"), COMMANDS[1:], ids=_ids(COMMANDS[1:]))
def test_command_is_documented_when_listed(path: tuple[str, ...], command: Any) -> None:
    heading = f"## `dpg {' '.join(path)}`"
    assert heading in DOCS.read_text(), f"docs/cli.md lacks a section {heading!r}"


def test_global_options_are_documented_when_root_has_them() -> None:
    text = DOCS.read_text()
    root = COMMANDS[0][1]
    for param in root.params:
        for flag in param.opts:
            assert flag in text, f"docs/cli.md does not mention the global option {flag}"


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=_ids(LEAVES))
def test_documented_usage_names_every_option_when_command_is_a_leaf(
    path: tuple[str, ...], command: Any
) -> None:
    text = DOCS.read_text()
    section = text.split(f"## `dpg {' '.join(path)}`", 1)[1].split("\n## ", 1)[0]
    for param in command.params:
        for flag in getattr(param, "opts", []):
            if flag.startswith("--") and flag != "--help":
                assert flag in section, f"docs for dpg {' '.join(path)} do not mention {flag}"
