"""``dpg apikey create|list|revoke``: secrets shown once, never listed."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import Result

Invoke = Callable[..., Result]

VIEW_INVOICES = "btcpay.store.canviewinvoices"


def _create(dpg: Invoke, *args: str) -> dict[str, Any]:
    result = dpg("apikey", "create", *args, "--json")
    assert result.exit_code == 0, result.output
    created: dict[str, Any] = json.loads(result.stdout)
    return created


class TestCreate:
    def test_create_limits_store_permissions_to_store_when_store_given(
        self, initialised: Invoke, store_id: str
    ) -> None:
        result = initialised(
            "apikey", "create", "--store", store_id, "--permission", VIEW_INVOICES,
            "--permission", "btcpay.store.canmodifyinvoices", "--label", "shop", "--json",
        )

        assert result.exit_code == 0, result.output
        key = json.loads(result.stdout)
        assert key["permissions"] == [
            f"{VIEW_INVOICES}:{store_id}", f"btcpay.store.canmodifyinvoices:{store_id}"
        ]
        assert re.fullmatch(r"[0-9a-f]{40}", key["apiKey"])
        assert "shown only once" in result.stderr

    def test_create_prints_secret_once_and_list_never_shows_it(
        self, initialised: Invoke
    ) -> None:
        human = initialised("apikey", "create", "--permission", "unrestricted")
        assert human.exit_code == 0, human.output
        secret = re.search(r"secret: ([0-9a-f]{40})", human.stdout)
        assert secret is not None

        listed = initialised("apikey", "list")
        listed_json = initialised("apikey", "list", "--json")

        assert secret.group(1) not in listed.output + listed_json.output
        (key,) = json.loads(listed_json.stdout)
        assert set(key) == {"id", "label", "permissions", "createdAt", "revokedAt", "active"}
        assert key["id"] in listed.stdout

    @pytest.mark.parametrize(
        "args",
        [
            ["--permission", "btcpay.store.canfly"],
            ["--store", "st_1", "--permission", "unrestricted"],
            ["--store", "st_1", "--permission", f"{VIEW_INVOICES}:st_2"],
            ["--label", "no permission"],
        ],
    )
    def test_create_exits_2_when_permissions_are_invalid(
        self, initialised: Invoke, args: list[str]
    ) -> None:
        result = initialised("apikey", "create", *args)

        assert result.exit_code == 2
        assert json.loads(initialised("apikey", "list", "--json").stdout) == []

    def test_create_exits_1_when_store_does_not_exist(self, initialised: Invoke) -> None:
        result = initialised(
            "apikey", "create", "--store", "st_gone", "--permission", VIEW_INVOICES
        )

        assert result.exit_code == 1
        assert "no store st_gone" in result.stderr


class TestRevoke:
    @pytest.fixture
    def key_id(self, initialised: Invoke) -> str:
        return str(_create(initialised, "--permission", "unrestricted", "--label", "ops")["id"])

    def _active(self, dpg: Invoke) -> list[bool]:
        return [k["active"] for k in json.loads(dpg("apikey", "list", "--json").stdout)]

    def test_revoke_without_prompt_when_yes_given(self, initialised: Invoke, key_id: str) -> None:
        result = initialised("apikey", "revoke", key_id, "--yes")

        assert result.exit_code == 0, result.output
        assert self._active(initialised) == [False]

    def test_revoke_after_confirmation_when_prompt_answered_yes(
        self, initialised: Invoke, key_id: str
    ) -> None:
        result = initialised("apikey", "revoke", key_id, input="y\n")

        assert result.exit_code == 0, result.output
        assert "Revoke API key" in result.stderr
        assert self._active(initialised) == [False]

    def test_revoke_keeps_key_when_prompt_answered_no(
        self, initialised: Invoke, key_id: str
    ) -> None:
        result = initialised("apikey", "revoke", key_id, input="n\n")

        assert result.exit_code == 1
        assert self._active(initialised) == [True]

    def test_revoke_changes_nothing_when_key_is_already_revoked(
        self, initialised: Invoke, key_id: str
    ) -> None:
        assert initialised("apikey", "revoke", key_id, "--yes").exit_code == 0

        result = initialised("apikey", "revoke", key_id, "--yes")

        assert result.exit_code == 0
        assert "already revoked" in result.stdout

    def test_revoke_exits_1_when_key_does_not_exist(self, initialised: Invoke) -> None:
        result = initialised("apikey", "revoke", "key_gone", "--yes")

        assert result.exit_code == 1
        assert "no API key key_gone" in result.stderr
