"""R12: ``Idempotency-Key`` with Stripe semantics on every mutating route."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar, post
from litestar.middleware.base import DefineMiddleware
from litestar.testing import TestClient
from sqlalchemy import func, select

from dpgnode.adapters.storage import tables
from dpgnode.adapters.storage.idempotency import SqlIdempotencyStore
from dpgnode.api.auth import AuthMiddleware
from dpgnode.api.errors import problem_response
from dpgnode.api.idempotency import IdempotencyMiddleware
from dpgnode.api.policy import policy_guard, public
from dpgnode.ports.idempotency import StoredResponse
from dpgnode.services.idempotency import (
    IdempotencyInProgressError,
    IdempotencyService,
    is_replayable,
    is_valid_key,
    request_hash,
)
from tests.unit.api.conftest import Api

STORES = "/api/v1/stores"
ENTRIES = "/api/v1/ledger/entries"
REPLAYED = "idempotent-replayed"
POSTINGS = [
    {"account": "operator:op:BTC:world", "amount": "-0.5"},
    {"account": "operator:op:BTC:available", "amount": "0.5"},
]


def keyed(api: Api, key: str, who: str = "admin") -> dict[str, str]:
    return api.auth(who, **{"Idempotency-Key": key})


def store_names(api: Api) -> list[str]:
    return sorted(store.name for store in api.node.access.stores())


def records(api: Api) -> int:
    with api.node.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(tables.idempotency_records))
        return int(count.scalar_one())


class TestConcurrentDuplicates:
    def test_one_store_is_created_when_fifty_duplicates_arrive_at_once(self, api: Api) -> None:
        def create(_: int) -> Any:
            return api.client.post(STORES, json={"name": "Once"}, headers=keyed(api, "c-1"))

        with ThreadPoolExecutor(max_workers=50) as pool:
            responses = list(pool.map(create, range(50)))
        assert {r.status_code for r in responses} == {200}
        assert len({r.content for r in responses}) == 1
        assert sum(REPLAYED not in r.headers for r in responses) == 1
        assert store_names(api) == ["Once", "Shop A", "Shop B"]

    def test_one_entry_is_posted_when_fifty_duplicates_arrive_at_once(self, api: Api) -> None:
        def post(_: int) -> Any:
            return api.client.post(ENTRIES, json={"postings": POSTINGS}, headers=keyed(api, "e-1"))

        with ThreadPoolExecutor(max_workers=50) as pool:
            responses = list(pool.map(post, range(50)))
        assert {r.status_code for r in responses} == {201}
        assert len({r.content for r in responses}) == 1
        report = api.node.verify_ledger()
        assert report.ok
        assert report.entries == 1


class TestSequentialRetries:
    def test_first_response_is_replayed_byte_for_byte_when_retried_200_times(
        self, api: Api
    ) -> None:
        first = api.client.post(STORES, json={"name": "Retry"}, headers=keyed(api, "s-1"))
        assert first.status_code == 200
        assert REPLAYED not in first.headers
        for _ in range(200):
            again = api.client.post(STORES, json={"name": "Retry"}, headers=keyed(api, "s-1"))
            assert again.status_code == 200
            assert again.content == first.content
            assert again.headers["content-type"] == first.headers["content-type"]
            assert again.headers[REPLAYED] == "true"
        assert store_names(api) == ["Retry", "Shop A", "Shop B"]

    def test_ledger_entry_is_posted_once_when_the_request_is_retried(self, api: Api) -> None:
        bodies = {
            api.client.post(ENTRIES, json={"postings": POSTINGS}, headers=keyed(api, "l-1")).content
            for _ in range(20)
        }
        assert len(bodies) == 1
        assert api.node.verify_ledger().entries == 1

    def test_delete_is_replayed_when_the_same_key_repeats_it(self, api: Api) -> None:
        url = f"{STORES}/{api.store_a}"
        first = api.client.delete(url, headers=keyed(api, "d-1"))
        again = api.client.delete(url, headers=keyed(api, "d-1"))
        assert (first.status_code, again.status_code) == (200, 200)
        assert again.headers[REPLAYED] == "true"
        fresh = api.client.delete(url, headers=keyed(api, "d-2"))
        assert fresh.status_code == 404


class TestKeyReuse:
    def test_reuse_is_refused_with_409_when_the_body_differs(self, api: Api) -> None:
        api.client.post(STORES, json={"name": "First"}, headers=keyed(api, "r-1"))
        response = api.client.post(STORES, json={"name": "Second"}, headers=keyed(api, "r-1"))
        assert response.status_code == 409
        assert response.json()["code"] == "idempotency_key_reused"
        assert store_names(api) == ["First", "Shop A", "Shop B"]

    def test_reuse_is_refused_with_409_when_the_path_differs(self, api: Api) -> None:
        api.client.post(STORES, json={"name": "First"}, headers=keyed(api, "r-2"))
        response = api.client.put(
            f"{STORES}/{api.store_a}", json={"name": "First"}, headers=keyed(api, "r-2")
        )
        assert response.status_code == 409
        assert api.node.access.store(api.store_a).name == "Shop A"

    def test_keys_are_independent_when_two_api_keys_use_the_same_value(self, api: Api) -> None:
        api.client.post(STORES, json={"name": "Mine"}, headers=keyed(api, "same"))
        other = api.key("unrestricted")
        response = api.client.post(
            STORES, json={"name": "Yours"},
            headers={"Authorization": f"token {other}", "Idempotency-Key": "same"},
        )
        assert response.status_code == 200
        assert store_names(api) == ["Mine", "Shop A", "Shop B", "Yours"]


class TestWhatIsNotKept:
    def test_validation_failure_is_not_kept_when_the_key_is_retried_with_a_fix(
        self, api: Api
    ) -> None:
        bad = api.client.post(
            STORES, json={"name": "Shop", "paymentTolerance": 500}, headers=keyed(api, "v-1")
        )
        assert bad.status_code == 422
        good = api.client.post(STORES, json={"name": "Shop"}, headers=keyed(api, "v-1"))
        assert good.status_code == 200
        assert REPLAYED not in good.headers

    def test_malformed_request_is_not_kept_when_the_key_is_retried(self, api: Api) -> None:
        bad = api.client.post(STORES, json={"name": "S", "id": "x"}, headers=keyed(api, "v-2"))
        assert bad.status_code == 400
        good = api.client.post(STORES, json={"name": "S"}, headers=keyed(api, "v-2"))
        assert good.status_code == 200
        assert records(api) == 1

    def test_refused_caller_takes_no_key_when_the_permission_is_missing(self, api: Api) -> None:
        refused = api.client.post(STORES, json={"name": "S"}, headers=keyed(api, "p-1", "readonly"))
        assert refused.status_code == 403
        assert records(api) == 0

    def test_bad_credentials_take_no_key_when_a_mutating_request_is_refused(
        self, api: Api
    ) -> None:
        refused = api.client.post(
            STORES, json={"name": "S"},
            headers={"Authorization": "token wrong", "Idempotency-Key": "p-2"},
        )
        assert refused.status_code == 401
        assert records(api) == 0

    def test_only_completed_responses_are_replayable_when_classified_by_status(self) -> None:
        assert [is_replayable(s) for s in (200, 201, 404, 409)] == [True] * 4
        assert [is_replayable(s) for s in (400, 401, 403, 413, 422, 429, 500, 503)] == [False] * 8


class TestRetention:
    def test_key_is_replayed_when_retried_just_inside_the_retention_window(
        self, api: Api
    ) -> None:
        first = api.client.post(STORES, json={"name": "Kept"}, headers=keyed(api, "t-1"))
        api.clock.advance(timedelta(hours=23, minutes=59))
        again = api.client.post(STORES, json={"name": "Kept"}, headers=keyed(api, "t-1"))
        assert again.content == first.content
        assert again.headers[REPLAYED] == "true"
        assert store_names(api) == ["Kept", "Shop A", "Shop B"]

    def test_key_is_treated_as_new_when_retried_after_the_retention_window(
        self, api: Api
    ) -> None:
        first = api.client.post(STORES, json={"name": "Old"}, headers=keyed(api, "t-2"))
        api.clock.advance(timedelta(hours=24, seconds=1))
        again = api.client.post(STORES, json={"name": "Old"}, headers=keyed(api, "t-2"))
        assert again.status_code == 200
        assert REPLAYED not in again.headers
        assert again.json()["id"] != first.json()["id"]
        assert store_names(api) == ["Old", "Old", "Shop A", "Shop B"]

    def test_expired_records_are_purged_when_the_window_has_passed(self, api: Api) -> None:
        api.client.post(STORES, json={"name": "A"}, headers=keyed(api, "u-1"))
        api.client.post(STORES, json={"name": "B"}, headers=keyed(api, "u-2"))
        assert asyncio.run(api.node.idempotency.purge()) == 0
        api.clock.advance(timedelta(hours=24, seconds=1))
        assert asyncio.run(api.node.idempotency.purge()) == 2
        assert records(api) == 0


@pytest.mark.parametrize(
    ("key", "valid"), [("a", True), ("x" * 255, True), ("", False), ("x" * 256, False),
                       ("a b", False), ("é", False)],
)
def test_key_syntax_is_checked_when_a_key_arrives(key: str, valid: bool) -> None:
    assert is_valid_key(key) is valid


def test_request_hash_differs_when_any_part_of_the_request_differs() -> None:
    base = request_hash("POST", "/a?", b"{}")
    assert base == request_hash("post", "/a?", b"{}")
    assert len({base, request_hash("PUT", "/a?", b"{}"), request_hash("POST", "/b?", b"{}"),
                request_hash("POST", "/a?", b"{ }"), request_hash("POST", "/a?x", b"{}")}) == 5


class TestInFlightClaims:
    """The service's waiting rules, driven directly (the HTTP tests cover the happy path)."""

    def service(self, api: Api) -> IdempotencyService:
        store = SqlIdempotencyStore(api.node.writer)
        return IdempotencyService(
            store, api.clock, retention=timedelta(hours=24), lock_ttl=timedelta(minutes=5),
            max_polls=2,
        )

    def test_duplicate_gives_up_with_409_when_the_first_request_never_finishes(
        self, api: Api
    ) -> None:
        service = self.service(api)

        async def scenario() -> None:
            assert await service.begin("key:k", "x", "h1") is None
            with pytest.raises(IdempotencyInProgressError):
                await service.begin("key:k", "x", "h1")

        asyncio.run(scenario())

    def test_claim_is_taken_over_when_its_holder_died_and_the_lock_expired(
        self, api: Api
    ) -> None:
        service = self.service(api)

        async def scenario() -> None:
            assert await service.begin("key:k", "x", "h1") is None
            api.clock.advance(timedelta(minutes=5))
            assert await service.begin("key:k", "x", "h1") is None
            stored = StoredResponse(201, "application/json", b'{"ok":true}')
            assert await service.finish("key:k", "x", "h1", stored)
            assert await service.begin("key:k", "x", "h1") == stored

        asyncio.run(scenario())

    def test_abandoned_claim_frees_the_key_when_the_request_produced_nothing(
        self, api: Api
    ) -> None:
        service = self.service(api)

        async def scenario() -> None:
            assert await service.begin("key:k", "x", "h1") is None
            await service.abandon("key:k", "x", "h1")
            assert await service.begin("key:k", "x", "h2") is None

        asyncio.run(scenario())


def test_anonymous_keys_are_scoped_to_the_client_address_when_a_public_route_mutates(
    api: Api,
) -> None:
    calls: list[int] = []

    @post("/count", opt=public(), sync_to_thread=False)
    def count() -> dict[str, int]:
        calls.append(1)
        return {"calls": len(calls)}

    app = Litestar(
        [count], guards=[policy_guard], exception_handlers={Exception: problem_response},
        middleware=[
            DefineMiddleware(AuthMiddleware, access=api.node.access),
            DefineMiddleware(IdempotencyMiddleware, service=api.node.idempotency,
                             max_body_bytes=1024),
        ],
        logging_config=None,
    )
    with TestClient(app) as client:
        first = client.post("/count", headers={"Idempotency-Key": "anon-1"})
        again = client.post("/count", headers={"Idempotency-Key": "anon-1"})
    assert first.json() == again.json() == {"calls": 1}
    assert again.headers[REPLAYED] == "true"
    with api.node.engine.connect() as conn:
        scopes = conn.execute(select(tables.idempotency_records.c.scope)).scalars().all()
    assert scopes == ["ip:testclient"]


class TestSecretBearingResponses:
    def test_secret_is_never_stored_and_retry_creates_nothing_when_a_key_is_issued(
        self, api: Api
    ) -> None:
        body = {"label": "shop", "permissions": ["btcpay.store.canviewinvoices"]}
        keys_before = len(api.node.access.api_keys())
        first = api.client.post("/api/v1/api-keys", json=body, headers=keyed(api, "issue-1"))
        assert first.status_code == 200
        secret = first.json()["apiKey"]

        retry = api.client.post("/api/v1/api-keys", json=body, headers=keyed(api, "issue-1"))

        assert retry.status_code == 409
        assert retry.json()["code"] == "secret_not_replayable"
        assert retry.headers[REPLAYED] == "true"
        assert len(api.node.access.api_keys()) == keys_before + 1  # exactly one effect
        with api.node.engine.connect() as conn:
            stored = conn.execute(select(tables.idempotency_records.c.response_body)).scalars()
            assert all(secret.encode() not in (blob or b"") for blob in stored)


class TestCrashBetweenCommitAndResponse:
    def test_retry_returns_the_first_store_when_the_idempotency_record_was_lost(
        self, api: Api
    ) -> None:
        first = api.client.post(STORES, json={"name": "Durable"}, headers=keyed(api, "crash-1"))
        assert first.status_code == 200
        # What a SIGKILL after the store's commit but before the record is finished leaves:
        # the store exists, the idempotency record does not.
        with api.node.writer_engine.begin() as conn:
            conn.execute(tables.idempotency_records.delete())

        retry = api.client.post(STORES, json={"name": "Durable"}, headers=keyed(api, "crash-1"))

        assert retry.status_code == 200
        assert retry.json() == first.json()
        assert store_names(api).count("Durable") == 1
