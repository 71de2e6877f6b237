"""Operators: tokens shown once and stored hashed, authentication, disabling."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dpgnode.adapters.storage import tables
from dpgnode.errors import AuthenticationError, ConflictError, NotFoundError, ValidationError
from dpgnode.node import Node
from dpgnode.services.custody.policy import hash_token


def test_token_is_returned_once_and_stored_hashed_when_added(node: Node) -> None:
    issued = node.custody.operators.add("alice")
    assert issued.token.startswith("dpgop_")
    assert "token=<hidden>" in repr(issued)
    with node.engine.connect() as conn:
        stored = list(conn.execute(select(tables.custody_operators)).mappings())
    assert [r["token_hash"] for r in stored] == [hash_token(issued.token)]
    assert issued.token not in repr(stored)


def test_token_identifies_its_operator_when_presented(node: Node) -> None:
    issued = node.custody.operators.add("alice")
    node.custody.operators.add("bob")
    assert node.custody.operators.authenticate(issued.token + "\n") == issued.operator


@pytest.mark.parametrize("token", ["", "dpgop_" + "0" * 64, "garbage"])
def test_unknown_tokens_are_refused_when_presented(node: Node, token: str) -> None:
    node.custody.operators.add("alice")
    with pytest.raises(AuthenticationError):
        node.custody.operators.authenticate(token)


def test_disabled_operator_is_refused_when_presenting_the_token(node: Node) -> None:
    issued = node.custody.operators.add("alice")
    node.custody.operators.disable("alice")
    node.custody.operators.disable("alice")  # twice is a no-op
    with pytest.raises(AuthenticationError):
        node.custody.operators.authenticate(issued.token)
    actions = [r.action for r in node.custody.audit.records()]
    assert actions == ["operator.added", "operator.disabled"]


def test_duplicate_name_is_a_conflict_when_added(node: Node) -> None:
    node.custody.operators.add("alice")
    with pytest.raises(ConflictError):
        node.custody.operators.add("alice")
    assert [op.name for op in node.custody.operators.operators()] == ["alice"]


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 65, "ünïcode"])
def test_bad_names_are_refused_when_added(node: Node, name: str) -> None:
    with pytest.raises(ValidationError):
        node.custody.operators.add(name)


def test_unknown_operator_is_not_found_when_disabled(node: Node) -> None:
    with pytest.raises(NotFoundError):
        node.custody.operators.disable("nobody")
