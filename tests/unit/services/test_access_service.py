from __future__ import annotations

import pytest

from dpgnode.errors import IdempotencyKeyReusedError, ValidationError
from dpgnode.node import Node
from dpgnode.services.access import StoreFields


class TestCreateStore:
    def test_repeat_returns_the_first_store_when_the_request_key_is_the_same(
        self, node: Node
    ) -> None:
        first = node.access.create_store(StoreFields(name="Once"), request_key="key_1:req-1")
        again = node.access.create_store(StoreFields(name="Once"), request_key="key_1:req-1")
        assert again == first
        assert [s.id for s in node.access.stores()] == [first.id]

    def test_repeat_is_refused_when_the_same_request_key_asks_for_another_store(
        self, node: Node
    ) -> None:
        node.access.create_store(StoreFields(name="Once"), request_key="key_1:req-2")
        with pytest.raises(IdempotencyKeyReusedError):
            node.access.create_store(StoreFields(name="Other"), request_key="key_1:req-2")
        assert [s.name for s in node.access.stores()] == ["Once"]

    def test_each_call_creates_a_store_when_no_request_key_is_given(self, node: Node) -> None:
        node.access.create_store(StoreFields(name="Twin"))
        node.access.create_store(StoreFields(name="Twin"))
        assert [s.name for s in node.access.stores()] == ["Twin", "Twin"]

    def test_creation_is_refused_when_the_name_is_missing(self, node: Node) -> None:
        with pytest.raises(ValidationError):
            node.access.create_store(StoreFields())
