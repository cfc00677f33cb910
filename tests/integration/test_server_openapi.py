"""The OpenAPI document against the app's router: every route documented, every documented
operation routed, the methods of each path exactly the router's, and ``Allow`` saying so."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.testclient import TestClient
from tests.fuzz.served import served_app, served_document

from sealbox.auth import tokens
from sealbox.server.app import server_version
from sealbox.server.openapi import OPENAPI_METHODS, OPERATIONS, doc_template, document
from sealbox.server.settings import ServerSettings

#: Every method a client could try (OPTIONS and TRACE are served by no route).
TRIED = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "LIST")
#: A value per path parameter that the parameter's schema allows.
SAMPLES = {
    "project": "payments",
    "env": "dev",
    "name": "API_KEY",
    "accessor": "0123456789abcdef01234567",
    "mount": "secret",
    "path": "secret",
    "key": "stripe",
    "method": "jwt",  # a login method's name; none is installed under it here
    "rotation_id": "rot_0123456789abcdef",
    "role": "db-readonly",
}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Starlette]:
    with served_app(tmp_path) as (served, _):
        yield served


@pytest.fixture
def doc(app: Starlette) -> dict[str, Any]:
    with TestClient(app) as client:
        served: dict[str, Any] = client.get("/v1/openapi.json").json()
    return served


def concrete(template: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], template)


def routed_methods(app: Starlette, path: str) -> set[str]:
    """The methods some route of the app serves (a full match) at ``path``."""
    served = set()
    for method in TRIED:
        scope = {"type": "http", "path": path, "method": method, "root_path": ""}
        for route in app.router.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                served.add(method)
                break
    return served


def documented_methods(item: dict[str, Any]) -> set[str]:
    methods = {m.upper() for m in item if m in OPENAPI_METHODS}
    if "GET" in methods:
        methods.add("HEAD")
        if item["get"].get("x-vault-list"):
            methods.add("LIST")
    return methods


def test_the_served_document_is_built_from_the_app_routes(
    app: Starlette, doc: dict[str, Any]
) -> None:
    assert doc == document(server_version(), app.router.routes)
    assert doc == served_document()
    assert doc["openapi"].startswith("3.1")


def test_every_route_is_documented(app: Starlette, doc: dict[str, Any]) -> None:
    for route in app.router.routes:
        assert isinstance(route, Route)
        item = doc["paths"][doc_template(route.path)]
        for method in route.methods or ():
            assert method in documented_methods(item), (method, route.path)


def test_every_documented_path_serves_exactly_its_methods(
    app: Starlette, doc: dict[str, Any]
) -> None:
    for template, item in doc["paths"].items():
        assert routed_methods(app, concrete(template)) == documented_methods(item), template


def test_allow_names_the_documented_methods(app: Starlette, doc: dict[str, Any]) -> None:
    """Starlette's 405 named only the first route of a path (``/v1/projects``: GET alone,
    though POST is served there too)."""
    with TestClient(app) as client:
        for template, item in doc["paths"].items():
            r = client.request("OPTIONS", concrete(template))
            assert r.status_code == 405, template
            allowed = {m.strip() for m in r.headers["allow"].split(",")}
            assert allowed == documented_methods(item) - {"LIST"}, template


def test_an_undocumented_route_or_operation_cannot_be_served(app: Starlette) -> None:
    async def handler(request: Any) -> Response:
        return Response()

    routes = list(app.router.routes)
    with pytest.raises(LookupError, match="no entry in OPERATIONS"):
        document("t", [*routes, Route("/v1/new", handler, methods=["GET"])])
    with pytest.raises(LookupError, match="without a route"):
        document("t", [r for r in routes if getattr(r, "path", "") != "/v1/sys/health"])
    assert ("/v1/sys/health", "GET") in OPERATIONS


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for template, item in doc["paths"].items():
        for method, op in item.items():
            if method in OPENAPI_METHODS:
                yield template, method, op


def test_statuses_the_server_answers_are_documented(doc: dict[str, Any]) -> None:
    for template, method, op in _operations(doc):
        where = f"{method.upper()} {template}"
        codes = set(op["responses"])
        authenticated = op.get("security") != []
        if authenticated:
            assert {"401", "403", "404"} <= codes, where
        if "requestBody" in op:
            assert {"400", "413", "415"} <= codes, where
        if template.startswith("/v1/auth/") and template.endswith("login"):
            assert {"401", "429"} <= codes, where
            assert "Retry-After" in op["responses"]["429"]["headers"]
        if template not in ("/v1/sys/health", "/v1/openapi.json", "/metrics"):
            assert "503" in codes, where
        if method != "get" and authenticated:
            assert "409" in codes, where


def test_error_bodies_are_the_ones_errors_py_sends(doc: dict[str, Any]) -> None:
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert set(error["properties"]["error"]["required"]) == {"code", "message", "request_id"}
    _, _, login = next(o for o in _operations(doc) if o[0] == "/v1/auth/login")
    assert login["responses"]["429"]["content"]["application/json"]["schema"]["allOf"][1] == {
        "properties": {"error": {"properties": {"code": {"enum": ["rate_limited"]}}}}
    }
    _, _, put = next(
        o for o in _operations(doc) if o[:2] == ("/v1/secrets/{project}/{env}/{name}", "put")
    )
    codes_415 = put["responses"]["415"]["content"]["application/json"]["schema"]["allOf"][1]
    assert codes_415["properties"]["error"]["properties"]["code"]["enum"] == [
        "unsupported_media_type"
    ]


def test_kv_paths_are_documented_segment_by_segment(doc: dict[str, Any]) -> None:
    """A KV path ``0`` was schema-valid (``path: string``) and refused: the document now
    names the segments a KV path needs, each with the server's rules."""
    templates = [t for t in doc["paths"] if "/data/" in t or "/metadata/" in t]
    assert templates
    for template in templates:
        assert template.endswith("/{project}/{env}/{key}"), template
        params = {
            p["name"]: p["schema"]
            for p in doc["paths"][template]["get" if "get" in doc["paths"][template] else "post"][
                "parameters"
            ]
            if p["in"] == "path"
        }
        from sealbox.model import PROJECT_RE

        assert re.fullmatch(params["project"]["pattern"].strip("^$"), "MyApp.io")
        assert params["project"]["pattern"] == "^" + PROJECT_RE.pattern[:-2] + "$"


def test_documented_patterns_fit_what_the_server_makes(doc: dict[str, Any]) -> None:
    """The accessor pattern said 16 hex digits; minted accessors have 24."""
    (param,) = doc["paths"]["/v1/tokens/{accessor}"]["delete"]["parameters"]
    for _ in range(20):
        assert re.fullmatch(param["schema"]["pattern"].strip("^$"), tokens.mint().accessor)


def test_the_kv_mounts_of_the_settings_are_documented(tmp_path: Path) -> None:
    with served_app(tmp_path) as (app, _):
        routes = app.router.routes
    doc = document("t", routes, ServerSettings(kv_mounts=("secret", "kv")).kv_mounts)
    mount = doc["paths"]["/v1/{mount}/metadata"]["get"]["parameters"][0]
    assert mount["schema"] == {"type": "string", "enum": ["kv", "secret"]}


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    from openapi_spec_validator import validate

    validate(doc)


def test_openapi_refs_resolve(doc: dict[str, Any]) -> None:
    text = json.dumps(doc)
    for ref in set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', text)):
        assert ref in doc["components"]["schemas"], ref


def test_the_document_path_is_no_kv_mount(tmp_path: Path) -> None:
    """``/v1/openapi.json/...`` is sealbox's own path: never a KV mount (which would answer
    in Vault's error shape and take writes under a mount named after the document)."""
    with served_app(tmp_path) as (served, token), TestClient(served) as client:
        r = client.post(
            "/v1/openapi.json/data/payments/dev/x",
            json={"data": {"v": "1"}},
            headers={"X-Vault-Token": token},
        )
    assert r.status_code == 404, r.text
    assert "error" in r.json()  # the native shape, not Vault's {"errors": [...]}
