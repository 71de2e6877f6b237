"""Health, server info, the OpenAPI document, request ids and logs."""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from dpgnode import __version__
from dpgnode.api.app import app_from_env, create_app
from dpgnode.logging import configure_logging
from dpgnode.settings import LogSettings
from tests.unit.api.conftest import Api, Seed

PREFIX = "/api/v1"


class TestHealthAndServerInfo:
    def test_health_answers_synchronized_when_called_without_a_key(self, api: Api) -> None:
        response = api.client.get(f"{PREFIX}/health")
        assert response.status_code == 200
        assert response.json() == {"synchronized": True}

    def test_server_info_has_greenfield_shape_when_called_with_any_valid_key(
        self, api: Api
    ) -> None:
        response = api.client.get(f"{PREFIX}/server/info", headers=api.auth("store_b"))
        assert response.status_code == 200
        assert response.json() == {
            "version": __version__, "onion": None, "supportedPaymentMethods": [],
            "fullySynched": True, "syncStatus": [],
        }

    def test_server_info_is_refused_when_called_without_a_key(self, api: Api) -> None:
        response = api.client.get(f"{PREFIX}/server/info")
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "token"
        assert response.json()["code"] == "unauthenticated"


class TestOpenApi:
    def test_openapi_document_lists_every_api_route_when_fetched(self, api: Api) -> None:
        response = api.client.get(f"{PREFIX}/openapi.json")
        assert response.status_code == 200
        document = response.json()
        assert document["info"]["title"] == "DPG node"
        paths = document["paths"]
        # Route paths carry parameter types (`{storeId:str}`); OpenAPI paths do not.
        expected = {
            (method.lower(), re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))
            for route in api.client.app.routes
            if isinstance(route, HTTPRoute)
            and route.path.startswith(PREFIX) and not route.path.startswith(f"{PREFIX}/docs")
            and route.path != f"{PREFIX}/openapi.json"
            for method in route.methods - {"HEAD", "OPTIONS"}
        }
        listed = {(method, path) for path, item in paths.items() for method in item}
        assert expected == listed
        assert len(expected) > 15  # the foundation's routes and every later one

    def test_openapi_documents_problem_bodies_when_a_route_can_fail(self, api: Api) -> None:
        paths = api.client.get(f"{PREFIX}/openapi.json").json()["paths"]
        responses = paths[f"{PREFIX}/stores"]["post"]["responses"]
        assert "application/problem+json" in responses["422"]["content"]
        assert "application/problem+json" in responses["400"]["content"]

    def test_schema_ui_is_served_when_browsing_the_docs(self, api: Api) -> None:
        response = api.client.get(f"{PREFIX}/docs/")
        assert response.status_code == 200
        assert "text/html" in response.headers["content-type"]


class TestRequestIds:
    def test_request_id_is_echoed_when_the_caller_sends_one(self, api: Api) -> None:
        response = api.client.get(f"{PREFIX}/health", headers={"X-Request-Id": "abc-123"})
        assert response.headers["x-request-id"] == "abc-123"

    def test_request_id_is_generated_when_the_caller_sends_none(self, api: Api) -> None:
        first = api.client.get(f"{PREFIX}/health").headers["x-request-id"]
        second = api.client.get(f"{PREFIX}/health").headers["x-request-id"]
        assert first.startswith("req_")
        assert second.startswith("req_")
        assert first != second

    def test_request_id_is_replaced_when_the_callers_one_is_unsafe(self, api: Api) -> None:
        response = api.client.get(f"{PREFIX}/health", headers={"X-Request-Id": "a b\tc"})
        assert response.headers["x-request-id"].startswith("req_")

    def test_problem_body_carries_the_request_id_when_a_request_fails(self, api: Api) -> None:
        response = api.client.get(f"{PREFIX}/nowhere", headers={"X-Request-Id": "trace-9"})
        assert response.status_code == 404
        assert response.headers["x-request-id"] == "trace-9"
        assert response.json()["requestId"] == "trace-9"

    def test_error_from_middleware_carries_the_request_id_when_a_key_is_bad(
        self, api: Api
    ) -> None:
        response = api.client.get(
            f"{PREFIX}/server/info",
            headers={"Authorization": "token nope", "X-Request-Id": "trace-10"},
        )
        assert response.status_code == 401
        assert response.headers["x-request-id"] == "trace-10"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """JSON logs into a buffer; the global logging setup is restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging(LogSettings(level="info", format="json"), stream=stream)
    yield stream
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


class TestLogs:
    def test_access_log_is_json_without_the_secret_when_a_key_is_used(
        self, api: Api, log_stream: io.StringIO
    ) -> None:
        stream = log_stream
        secret = api.secrets["admin"]
        api.client.get(f"{PREFIX}/server/info", headers=api.auth("admin", **{"X-Request-Id": "r1"}))
        api.client.get(f"{PREFIX}/server/info", headers={"Authorization": f"token {secret}x"})
        text = stream.getvalue()
        assert secret not in text
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        access = [line for line in lines if line.get("event") == "http_request"]
        assert access[0]["request_id"] == "r1"
        assert access[0]["status"] == 200
        assert access[0]["key_id"].startswith("key_")
        assert access[1]["status"] == 401

    def test_secret_fields_are_masked_when_code_logs_them(self, log_stream: io.StringIO) -> None:
        stream = log_stream
        structlog.get_logger("t").info("oops", api_key="s3cret", nested={"password": "pw"})
        record = json.loads(stream.getvalue().splitlines()[-1])
        assert record["api_key"] == "***"
        assert record["nested"] == {"password": "***"}
        assert "s3cret" not in stream.getvalue()


def test_create_app_builds_routes_when_given_a_node(api: Api) -> None:
    app = create_app(api.node)
    assert any(route.path == f"{PREFIX}/health" for route in app.routes)


def test_app_from_env_serves_and_closes_the_node_when_run_by_a_server(
    tmp_path: Path, seed: Seed, monkeypatch: pytest.MonkeyPatch, log_stream: io.StringIO
) -> None:
    data_dir = tmp_path / "env-node"
    shutil.copytree(seed.data_dir, data_dir)
    monkeypatch.setenv("DPG_DATA_DIR", str(data_dir))
    monkeypatch.delenv("DPG_CONFIG_FILE", raising=False)
    app = app_from_env()
    with TestClient(app) as client:
        assert client.get(f"{PREFIX}/health").status_code == 200
        headers = {"Authorization": f"token {seed.secrets['readonly']}"}
        assert client.get(f"{PREFIX}/stores", headers=headers).status_code == 200
    assert app.state["node"]._closed
