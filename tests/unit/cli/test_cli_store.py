"""``dpg store create|list``."""

from __future__ import annotations

import json
from collections.abc import Callable

from typer.testing import Result

Invoke = Callable[..., Result]


class TestStore:
    def test_create_prints_store_as_json_when_asked(self, initialised: Invoke) -> None:
        result = initialised(
            "store", "create", "--name", "Boutique", "--default-currency", "EUR",
            "--website", "https://shop.example", "--json",
        )

        assert result.exit_code == 0, result.output
        store = json.loads(result.stdout)
        assert store["id"].startswith("st_")
        assert (store["name"], store["defaultCurrency"], store["website"]) == (
            "Boutique", "EUR", "https://shop.example"
        )

    def test_create_prints_id_when_not_json(self, initialised: Invoke) -> None:
        result = initialised("store", "create", "--name", "Corner shop")

        assert result.exit_code == 0, result.output
        assert "created store 'Corner shop': st_" in result.stdout

    def test_list_shows_created_stores_when_some_exist(
        self, initialised: Invoke, store_id: str
    ) -> None:
        as_json = initialised("store", "list", "--json")
        table = initialised("store", "list")

        assert as_json.exit_code == 0, as_json.output
        assert [s["id"] for s in json.loads(as_json.stdout)] == [store_id]
        assert store_id in table.stdout

    def test_list_is_empty_json_array_when_no_store_exists(self, initialised: Invoke) -> None:
        result = initialised("store", "list", "--json")

        assert result.exit_code == 0
        assert json.loads(result.stdout) == []

    def test_create_exits_1_when_currency_is_unknown(self, initialised: Invoke) -> None:
        result = initialised("store", "create", "--name", "Shop", "--default-currency", "XYZ")

        assert result.exit_code == 1
        assert "unknown currency" in result.stderr

    def test_create_exits_1_when_name_is_blank(self, initialised: Invoke) -> None:
        result = initialised("store", "create", "--name", "  ")

        assert result.exit_code == 1
        assert "name must be 1-100 characters" in result.stderr

    def test_create_exits_2_when_name_is_missing(self, initialised: Invoke) -> None:
        result = initialised("store", "create")

        assert result.exit_code == 2

    def test_create_exits_3_when_not_initialised(self, dpg: Invoke) -> None:
        result = dpg("store", "create", "--name", "Shop")

        assert result.exit_code == 3
        assert "dpg init" in result.stderr
