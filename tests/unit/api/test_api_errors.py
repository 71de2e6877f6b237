"""Bad input gets a problem document naming the problem, the right status, and no effect."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from dpgnode.api.context import RequestContextMiddleware
from dpgnode.api.errors import problem_response
from dpgnode.api.policy import policy_guard, public
from dpgnode.domain.access import STORE_VIEW
from dpgnode.errors import IntegrityError, UnavailableError
from tests.unit.api.conftest import Api

PREFIX = "/api/v1"
WORLD = "operator:op:BTC:world"
HOT = "operator:op:BTC:available"


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == f"https://docs.dpg.example/errors/{body['code']}"
    assert body["message"] == body["detail"]
    assert body["requestId"] == response.headers["x-request-id"]
    return body


def paths(body: dict[str, Any]) -> list[str]:
    return [error["path"] for error in body.get("errors", [])]


def store_count(api: Api) -> int:
    return len(api.node.access.stores())


def entry(*postings: tuple[str, str], key: str = "e1") -> dict[str, Any]:
    return {
        "idempotencyKey": key,
        "postings": [{"account": account, "amount": amount} for account, amount in postings],
    }


class TestMalformedRequests:
    def test_malformed_json_is_refused_with_400_when_the_body_does_not_parse(
        self, api: Api
    ) -> None:
        response = api.client.post(
            f"{PREFIX}/stores", content=b'{"name": "x",',
            headers=api.auth("admin", **{"Content-Type": "application/json"}),
        )
        body = problem(response, 400)
        assert body["code"] == "invalid_json"
        assert store_count(api) == 2

    def test_wrong_type_is_refused_with_400_naming_the_field_when_a_string_is_a_number(
        self, api: Api
    ) -> None:
        response = api.client.post(
            f"{PREFIX}/stores", json={"name": 42}, headers=api.auth("admin")
        )
        body = problem(response, 400)
        assert paths(body) == ["name"]
        assert store_count(api) == 2

    def test_amount_as_a_json_number_is_refused_with_400_when_posting(self, api: Api) -> None:
        body = {"idempotencyKey": "n1", "postings": [
            {"account": WORLD, "amount": -1.5}, {"account": HOT, "amount": 1.5}]}
        response = api.client.post(
            f"{PREFIX}/ledger/entries", json=body, headers=api.auth("admin")
        )
        assert paths(problem(response, 400)) == ["postings[0].amount"]

    @pytest.mark.parametrize("field", ["id", "archived", "createdTime", "nmae"])
    def test_unknown_or_privileged_field_is_refused_with_400_naming_it_when_creating_a_store(
        self, api: Api, field: str
    ) -> None:
        response = api.client.post(
            f"{PREFIX}/stores", json={"name": "Shop", field: "x"}, headers=api.auth("admin")
        )
        body = problem(response, 400)
        assert paths(body) == [field]
        assert store_count(api) == 2

    def test_unknown_nested_field_is_named_with_its_path_when_posting_an_entry(
        self, api: Api
    ) -> None:
        body = entry((WORLD, "-1"), (HOT, "1"))
        body["postings"][1]["currency"] = "BTC"
        response = api.client.post(
            f"{PREFIX}/ledger/entries", json=body, headers=api.auth("admin")
        )
        assert paths(problem(response, 400)) == ["postings[1].currency"]

    def test_missing_body_is_refused_with_400_when_a_route_needs_one(self, api: Api) -> None:
        response = api.client.post(f"{PREFIX}/stores", headers=api.auth("admin"))
        assert paths(problem(response, 400)) == ["body"]

    def test_explicit_nulls_count_as_absent_when_creating_a_store(self, api: Api) -> None:
        response = api.client.post(
            f"{PREFIX}/stores",
            json={"name": "Shop", "website": None, "speedPolicy": None, "invoiceExpiration": None},
            headers=api.auth("admin"),
        )
        assert response.status_code == 200
        assert response.json()["invoiceExpiration"] == 900

    def test_bad_query_parameter_is_refused_with_400_naming_it_when_filtering(
        self, api: Api
    ) -> None:
        response = api.client.get(
            f"{PREFIX}/ledger/accounts?ownerType=merchant", headers=api.auth("admin")
        )
        assert paths(problem(response, 400)) == ["ownerType"]
        response = api.client.get(
            f"{PREFIX}/ledger/accounts/{HOT}/statement?from=yesterday", headers=api.auth("admin")
        )
        assert response.status_code in (400, 404)

    def test_malformed_idempotency_key_is_refused_with_400_when_it_has_spaces(
        self, api: Api
    ) -> None:
        response = api.client.post(
            f"{PREFIX}/stores", json={"name": "Shop"},
            headers=api.auth("admin", **{"Idempotency-Key": "a b"}),
        )
        assert paths(problem(response, 400)) == ["Idempotency-Key"]
        assert store_count(api) == 2

    def test_wrong_method_is_refused_with_405_when_a_route_does_not_take_it(
        self, api: Api
    ) -> None:
        response = api.client.patch(f"{PREFIX}/health")
        assert problem(response, 405)["code"] == "method_not_allowed"


class TestBusinessRules:
    def test_out_of_range_setting_is_refused_with_422_naming_it_when_creating_a_store(
        self, api: Api
    ) -> None:
        response = api.client.post(
            f"{PREFIX}/stores", json={"name": "Shop", "paymentTolerance": 101},
            headers=api.auth("admin"),
        )
        assert paths(problem(response, 422)) == ["paymentTolerance"]
        assert store_count(api) == 2

    def test_over_precise_amount_is_refused_with_422_naming_it_when_posting(
        self, api: Api
    ) -> None:
        response = api.client.post(
            f"{PREFIX}/ledger/entries",
            json=entry((WORLD, "-0.000000001"), (HOT, "0.000000001")),
            headers=api.auth("admin"),
        )
        body = problem(response, 422)
        assert paths(body) == ["postings[0].amount"]
        assert "fractional digits" in body["message"]
        assert api.node.verify_ledger().entries == 0

    @pytest.mark.parametrize("amount", ["1e5", "--1", "0x10", "", " "])
    def test_malformed_amount_is_refused_with_422_naming_it_when_posting(
        self, api: Api, amount: str
    ) -> None:
        response = api.client.post(
            f"{PREFIX}/ledger/entries", json=entry((WORLD, "-1"), (HOT, amount)),
            headers=api.auth("admin"),
        )
        assert paths(problem(response, 422)) == ["postings[1].amount"]

    def test_negative_amount_is_refused_with_422_when_it_would_overdraw_an_account(
        self, api: Api
    ) -> None:
        response = api.client.post(
            f"{PREFIX}/ledger/entries", json=entry((HOT, "-1"), (WORLD, "1")),
            headers=api.auth("admin"),
        )
        assert problem(response, 422)["code"] == "insufficient_funds"
        assert api.node.verify_ledger().entries == 0

    def test_unknown_asset_is_refused_with_422_naming_the_field_when_posting(
        self, api: Api
    ) -> None:
        response = api.client.post(
            f"{PREFIX}/ledger/entries",
            json=entry(("operator:op:NOPE:world", "-1"), ("operator:op:NOPE:available", "1")),
            headers=api.auth("admin"),
        )
        body = problem(response, 422)
        assert paths(body) == ["postings[0].account"]
        assert "unknown asset" in body["message"]

    def test_unbalanced_entry_is_refused_with_422_when_postings_do_not_sum_to_zero(
        self, api: Api
    ) -> None:
        response = api.client.post(
            f"{PREFIX}/ledger/entries", json=entry((WORLD, "-1"), (HOT, "2")),
            headers=api.auth("admin"),
        )
        assert paths(problem(response, 422)) == ["postings"]

    def test_missing_entry_key_is_refused_with_422_when_neither_body_nor_header_has_one(
        self, api: Api
    ) -> None:
        body = entry((WORLD, "-1"), (HOT, "1"))
        del body["idempotencyKey"]
        response = api.client.post(
            f"{PREFIX}/ledger/entries", json=body, headers=api.auth("admin")
        )
        assert paths(problem(response, 422)) == ["idempotencyKey"]

    def test_permission_for_a_missing_store_is_refused_with_422_when_creating_a_key(
        self, api: Api
    ) -> None:
        response = api.client.post(
            f"{PREFIX}/api-keys", json={"permissions": [f"{STORE_VIEW}:st_missing"]},
            headers=api.auth("admin"),
        )
        assert paths(problem(response, 422)) == ["permissions"]


class TestBodySize:
    def test_oversized_body_is_refused_with_413_when_it_exceeds_the_limit(
        self, api: Api
    ) -> None:
        big = {"name": "x" * (api.node.settings.api.max_body_bytes + 10)}
        response = api.client.post(f"{PREFIX}/stores", json=big, headers=api.auth("admin"))
        assert problem(response, 413)["code"] == "payload_too_large"
        assert store_count(api) == 2

    def test_oversized_body_is_refused_with_413_when_it_carries_an_idempotency_key(
        self, api: Api
    ) -> None:
        big = {"name": "x" * (api.node.settings.api.max_body_bytes + 10)}
        response = api.client.post(
            f"{PREFIX}/stores", json=big,
            headers=api.auth("admin", **{"Idempotency-Key": "big-1"}),
        )
        problem(response, 413)
        small = api.client.post(
            f"{PREFIX}/stores", json={"name": "ok"},
            headers=api.auth("admin", **{"Idempotency-Key": "big-1"}),
        )
        assert small.status_code == 200


class TestCredentials:
    def test_missing_key_is_refused_with_401_when_the_route_needs_one(self, api: Api) -> None:
        assert problem(api.client.get(f"{PREFIX}/stores"), 401)["code"] == "unauthenticated"

    def test_unknown_key_is_refused_with_401_when_it_matches_no_key(self, api: Api) -> None:
        unknown = {"Authorization": "token " + "0" * 40}
        response = api.client.get(f"{PREFIX}/stores", headers=unknown)
        assert problem(response, 401)["code"] == "unauthenticated"

    @pytest.mark.parametrize("scheme", ["Basic", "Bearer"])
    def test_other_schemes_are_refused_with_401_when_used_instead_of_token(
        self, api: Api, scheme: str
    ) -> None:
        response = api.client.get(
            f"{PREFIX}/stores", headers={"Authorization": f"{scheme} {api.secrets['admin']}"}
        )
        assert scheme in problem(response, 401)["message"]

    def test_revoked_key_is_refused_with_401_when_used_after_revocation(self, api: Api) -> None:
        headers = api.auth("store_a")
        assert api.client.delete(f"{PREFIX}/api-keys/current", headers=headers).status_code == 200
        assert problem(api.client.get(f"{PREFIX}/server/info", headers=headers), 401)

    def test_missing_permission_is_refused_with_403_when_the_key_sees_the_store(
        self, api: Api
    ) -> None:
        response = api.client.put(
            f"{PREFIX}/stores/{api.store_a}", json={"name": "New"}, headers=api.auth("readonly")
        )
        assert problem(response, 403)["code"] == "forbidden"
        assert api.node.access.store(api.store_a).name == "Shop A"

    def test_other_store_is_hidden_with_404_when_the_key_is_limited_to_one_store(
        self, api: Api
    ) -> None:
        response = api.client.get(f"{PREFIX}/stores/{api.store_b}", headers=api.auth("store_a"))
        assert problem(response, 404)["code"] == "not_found"
        missing = api.client.get(f"{PREFIX}/stores/st_missing", headers=api.auth("store_a"))
        assert problem(missing, 404)["detail"].replace("st_missing", api.store_b) == (
            problem(response, 404)["detail"]
        )


class TestRateLimits:
    def test_key_is_limited_with_429_and_retry_after_when_it_exceeds_its_rate(
        self, make_api: Callable[..., Api]
    ) -> None:
        api = make_api(rate_limit_per_key=3)
        headers = api.auth("admin")
        statuses = [api.client.get(f"{PREFIX}/server/info", headers=headers).status_code
                    for _ in range(3)]
        assert statuses == [200, 200, 200]
        refused = api.client.get(f"{PREFIX}/server/info", headers=headers)
        body = problem(refused, 429)
        assert body["code"] == "rate_limited"
        assert refused.headers["retry-after"] == "20"
        other = api.client.get(f"{PREFIX}/server/info", headers=api.auth("readonly"))
        assert other.status_code == 200

    def test_key_is_served_again_when_the_retry_after_delay_has_passed(
        self, make_api: Callable[..., Api]
    ) -> None:
        api = make_api(rate_limit_per_key=3)
        headers = api.auth("admin")
        for _ in range(3):
            api.client.get(f"{PREFIX}/server/info", headers=headers)
        retry_after = int(api.client.get(f"{PREFIX}/server/info", headers=headers)
                          .headers["retry-after"])
        api.clock.advance(timedelta(seconds=retry_after))
        assert api.client.get(f"{PREFIX}/server/info", headers=headers).status_code == 200
        assert api.client.get(f"{PREFIX}/server/info", headers=headers).status_code == 429

    def test_client_address_is_limited_with_429_when_calls_carry_no_key(
        self, make_api: Callable[..., Api]
    ) -> None:
        api = make_api(rate_limit_per_ip=2)
        assert [api.client.get(f"{PREFIX}/health").status_code for _ in range(2)] == [200, 200]
        refused = api.client.get(f"{PREFIX}/health")
        problem(refused, 429)
        assert int(refused.headers["retry-after"]) == 30
        bad_key = api.client.get(f"{PREFIX}/health", headers={"Authorization": "token bad"})
        assert bad_key.status_code == 429
        assert api.client.get(f"{PREFIX}/health", headers=api.auth("admin")).status_code == 200


class TestServerSideErrors:
    @pytest.mark.parametrize(
        ("error", "status", "code"),
        [
            (RuntimeError("db password=hunter2"), 500, "internal_error"),
            (IntegrityError("hash chain broken at hunter2"), 500, "internal_error"),
            (UnavailableError("database busy", retry_after=7), 503, "unavailable"),
        ],
    )
    def test_server_errors_reveal_only_a_request_id_when_a_handler_fails(
        self, error: Exception, status: int, code: str
    ) -> None:
        @get("/boom", sync_to_thread=False, opt=public())
        def boom() -> None:
            raise error

        app = Litestar(
            [boom], middleware=[RequestContextMiddleware], guards=[policy_guard],
            exception_handlers={Exception: problem_response}, logging_config=None,
        )
        with TestClient(app) as client:
            response = client.get("/boom", headers={"X-Request-Id": "crash-1"})
        body = problem(response, status)
        assert body["code"] == code
        assert "hunter2" not in response.text
        if status == 500:
            assert "crash-1" in body["detail"]
        else:
            assert response.headers["retry-after"] == "7"


@pytest.mark.parametrize(
    ("body", "path"),
    [({}, "name"), ({"name": None}, "name"), ([], "body"), (None, "body")],
)
def test_missing_required_field_is_named_with_400_when_creating_a_store(
    api: Api, body: Any, path: str
) -> None:
    response = api.client.post(
        f"{PREFIX}/stores", content=json.dumps(body).encode(),
        headers=api.auth("admin", **{"Content-Type": "application/json"}),
    )
    assert paths(problem(response, 400)) == [path]


def test_missing_nested_field_is_named_with_its_path_when_a_posting_lacks_an_amount(
    api: Api,
) -> None:
    response = api.client.post(
        f"{PREFIX}/ledger/entries",
        json={"idempotencyKey": "x", "postings": [{"account": WORLD}]},
        headers=api.auth("admin"),
    )
    assert problem(response, 400)["errors"] == [
        {"path": "postings[0].amount", "message": "required field is missing"}
    ]
