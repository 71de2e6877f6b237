"""Greenfield permissions: parsing, implication, store scoping, revocation."""

from __future__ import annotations

import pytest

from dpgnode.domain.access import (
    KNOWN_PERMISSIONS,
    LEDGER_POST,
    LEDGER_VIEW,
    SERVER_MODIFY,
    SERVER_VIEW,
    STORE_MODIFY,
    STORE_PERMISSIONS,
    UNRESTRICTED,
    Permission,
    parse_permissions,
)
from dpgnode.errors import ValidationError
from tests import factories as f

VIEW_INVOICES = "btcpay.store.canviewinvoices"
CREATE_INVOICE = "btcpay.store.cancreateinvoice"
MODIFY_INVOICES = "btcpay.store.canmodifyinvoices"


class TestParse:
    def test_parse_keeps_the_store_when_permission_is_store_scoped(self) -> None:
        permission = Permission.parse(f"{VIEW_INVOICES}:st_1")
        assert permission == Permission(VIEW_INVOICES, "st_1")
        assert str(permission) == f"{VIEW_INVOICES}:st_1"

    def test_parse_round_trips_when_permission_is_unscoped(self) -> None:
        assert str(Permission.parse(SERVER_VIEW)) == SERVER_VIEW

    @pytest.mark.parametrize(
        "text",
        ["btcpay.store.canfly", "", "BTCPAY.STORE.CANVIEWINVOICES", "unrestricted2"],
    )
    def test_parse_refuses_when_permission_is_unknown(self, text: str) -> None:
        with pytest.raises(ValidationError, match="unknown permission") as info:
            Permission.parse(text)
        assert info.value.field == "permissions"

    def test_parse_refuses_when_a_server_permission_is_limited_to_a_store(self) -> None:
        with pytest.raises(ValidationError, match="cannot be limited"):
            Permission.parse(f"{SERVER_MODIFY}:st_1")

    @pytest.mark.parametrize("store_id", ["st 1", "st/1", "x" * 65, "st_1\n"])
    def test_parse_refuses_when_store_id_is_malformed(self, store_id: str) -> None:
        with pytest.raises(ValidationError, match="store id"):
            Permission.parse(f"{VIEW_INVOICES}:{store_id}")

    def test_parse_permissions_refuses_when_list_is_empty(self) -> None:
        with pytest.raises(ValidationError, match="at least one"):
            parse_permissions([])

    def test_parse_permissions_drops_duplicates_when_repeated(self) -> None:
        parsed = parse_permissions([VIEW_INVOICES, VIEW_INVOICES, f"{VIEW_INVOICES}:st_1"])
        assert parsed == (Permission(VIEW_INVOICES), Permission(VIEW_INVOICES, "st_1"))


class TestImplication:
    @pytest.mark.parametrize("permission", sorted(KNOWN_PERMISSIONS))
    def test_unrestricted_allows_everything_when_granted(self, permission: str) -> None:
        assert f.api_key(UNRESTRICTED).allows(permission, "st_1")

    def test_server_modify_allows_everything_but_unrestricted_when_granted(self) -> None:
        key = f.api_key(SERVER_MODIFY)
        assert all(key.allows(p, "st_1") for p in KNOWN_PERMISSIONS - {UNRESTRICTED})
        assert not key.allows(UNRESTRICTED)

    @pytest.mark.parametrize("permission", sorted(STORE_PERMISSIONS))
    def test_store_modify_allows_every_store_permission_when_granted(self, permission: str) -> None:
        assert f.api_key(STORE_MODIFY).allows(permission, "st_1")

    def test_store_modify_allows_no_server_permission_when_granted(self) -> None:
        key = f.api_key(STORE_MODIFY)
        assert not any(key.allows(p) for p in KNOWN_PERMISSIONS - STORE_PERMISSIONS)

    def test_modify_invoices_implies_view_and_create_but_not_more_when_granted(self) -> None:
        key = f.api_key(MODIFY_INVOICES)
        assert key.allows(VIEW_INVOICES, "st_1")
        assert key.allows(CREATE_INVOICE, "st_1")
        assert not key.allows(STORE_MODIFY, "st_1")
        assert not key.allows("btcpay.store.canviewpayouts", "st_1")

    def test_view_invoices_does_not_imply_modify_when_granted(self) -> None:
        assert not f.api_key(VIEW_INVOICES).allows(MODIFY_INVOICES, "st_1")

    def test_implication_is_transitive_when_chained(self) -> None:
        # manage pull payments -> create pull payments -> create non-approved pull payments
        key = f.api_key("btcpay.store.canmanagepullpayments")
        assert key.allows("btcpay.store.cancreatenonapprovedpullpayments", "st_1")

    def test_ledger_post_implies_ledger_view_when_granted(self) -> None:
        key = f.api_key(LEDGER_POST)
        assert key.allows(LEDGER_VIEW)
        assert not f.api_key(LEDGER_VIEW).allows(LEDGER_POST)


class TestStoreScoping:
    def test_scoped_permission_allows_only_its_store_when_checked(self) -> None:
        key = f.api_key(f"{VIEW_INVOICES}:st_1")
        assert key.allows(VIEW_INVOICES, "st_1")
        assert not key.allows(VIEW_INVOICES, "st_2")

    def test_scoped_permission_does_not_allow_a_storeless_route_when_checked(self) -> None:
        assert not f.api_key(f"{VIEW_INVOICES}:st_1").allows(VIEW_INVOICES, None)

    def test_unscoped_permission_allows_every_store_when_checked(self) -> None:
        key = f.api_key(VIEW_INVOICES)
        assert key.allows(VIEW_INVOICES, "st_1")
        assert key.allows(VIEW_INVOICES, "st_2")

    def test_implication_keeps_the_scope_when_permission_is_scoped(self) -> None:
        key = f.api_key(f"{STORE_MODIFY}:st_1")
        assert key.allows(CREATE_INVOICE, "st_1")
        assert not key.allows(CREATE_INVOICE, "st_2")

    def test_visible_stores_are_the_scoped_ones_when_every_permission_is_scoped(self) -> None:
        key = f.api_key(f"{VIEW_INVOICES}:st_1", f"{CREATE_INVOICE}:st_2")
        assert key.visible_store_ids() == frozenset({"st_1", "st_2"})

    def test_visible_stores_are_all_when_one_permission_is_unscoped(self) -> None:
        assert f.api_key(f"{VIEW_INVOICES}:st_1", SERVER_VIEW).visible_store_ids() is None


class TestRevocation:
    def test_revoked_key_allows_nothing_when_it_once_was_unrestricted(self) -> None:
        key = f.api_key(UNRESTRICTED, revoked_at=f.T0)
        assert not key.active
        assert not any(key.allows(p, "st_1") for p in KNOWN_PERMISSIONS)

    def test_active_key_is_active_when_never_revoked(self) -> None:
        assert f.api_key(VIEW_INVOICES).active
