"""docs/openapi.yaml against the app: every route in both, method by method, and the spec served at
GET /openapi.json (404 with the JSON error body where the file is not deployed)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PUBLIC_ROUTES

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "docs" / "openapi.yaml"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}

# Public routes: no token (the isolation tests skip exactly these).
PUBLIC = PUBLIC_ROUTES
SEACAT_TEXT = {
    ("PUT", "/{tenant}/seacat/enroll"),
    ("POST", "/{tenant}/seacat/enroll"),
    ("GET", "/{tenant}/seacat/get/{identity}"),
}
NGINX = {("PUT", "/{tenant}/seacat/nginx_authenticate"), ("POST", "/{tenant}/seacat/nginx_authenticate")}


def plain_text(path: str) -> bool:
    """Routes whose errors are plain text: the SeaCat clients' and EST's (RFC 7030 §4.2.3)."""
    return path.startswith("/.well-known/est/")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text())


def app_operations() -> set[tuple[str, str]]:
    from app import app

    return {(method.upper(), path) for path, methods in app.routes.items() for method in methods}


def spec_operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item if method in METHODS}


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield method.upper(), path, item, op


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_the_spec_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    assert spec["openapi"].startswith("3.1")
    validator.validate(spec)


def test_every_route_is_in_the_spec_and_every_spec_operation_is_a_route(spec: dict[str, Any]) -> None:
    in_app, in_spec = app_operations(), spec_operations(spec)
    missing = sorted(in_app - in_spec)
    stale = sorted(in_spec - in_app)
    assert not missing, f"routes of the app that docs/openapi.yaml does not describe: {missing}"
    assert not stale, f"operations in docs/openapi.yaml that the app does not have: {stale}"


def test_operation_ids_are_unique(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, _, op in operations(spec)]
    assert len(ids) == len(set(ids))


def test_path_parameters_are_declared_with_their_patterns(spec: dict[str, Any]) -> None:
    from chalicelib.seacat.codec import IDENTITY_RE
    from chalicelib.service.ids import TENANT_RE

    for method, path, item, op in operations(spec):
        declared = {
            resolve(spec, p)["name"]: resolve(spec, p)
            for p in [*item.get("parameters", []), *op.get("parameters", [])]
            if resolve(spec, p)["in"] == "path"
        }
        assert set(declared) == set(re.findall(r"{(\w+)}", path)), (method, path)
        for name, param in declared.items():
            schema = resolve(spec, param["schema"])
            assert param["required"] is True
            assert "pattern" in schema, (method, path, name)
            if name == "tenant":
                assert schema["pattern"] == TENANT_RE.pattern
            if name == "identity":
                assert re.fullmatch(schema["pattern"], "HDKXPDREZADFK4G2")
                assert IDENTITY_RE.pattern.replace("\\Z", "$") == schema["pattern"]


def test_security_marks_exactly_the_public_routes(spec: dict[str, Any]) -> None:
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert spec["security"] == [{"bearerAuth": []}]
    public = {(m, p) for m, p, _, op in operations(spec) if op.get("security") == []}
    assert public == PUBLIC
    for method, path, _, op in operations(spec):
        if (method, path) not in PUBLIC:
            assert "401" in op["responses"], (method, path)


def test_error_bodies_match_the_route_family(spec: dict[str, Any]) -> None:
    for method, path, _, op in operations(spec):
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            content = resolve(spec, response).get("content", {})
            if (method, path) in NGINX:
                assert status in ("401", "403") and list(content) == ["text/plain"], (method, path, status)
            elif status == "415":  # the framework's refusal before the route runs, in the API's error shape
                assert resolve(spec, content["application/json"]["schema"]) == spec["components"]["schemas"]["Error"]
            elif (method, path) in SEACAT_TEXT or plain_text(path):
                assert list(content) == ["text/plain"], (method, path, status)
            else:
                assert resolve(spec, content["application/json"]["schema"]) == spec["components"]["schemas"]["Error"]
            if status == "503":
                assert "Retry-After" in resolve(spec, response)["headers"], (method, path)
    nginx = [op for m, p, _, op in operations(spec) if (m, p) in NGINX]
    assert all(set(op["responses"]) == {"200", "401", "403"} for op in nginx)


def test_certificate_downloads_negotiate_json_pem_der(spec: dict[str, Any]) -> None:
    for path, method in (("/{tenant}/x509/cert/{cert_id}", "get"), ("/{tenant}/x509/self-signed", "put")):
        ok = next(s for s in ("200", "201") if s in spec["paths"][path][method]["responses"])
        content = spec["paths"][path][method]["responses"][ok]["content"]
        assert set(content) == {"application/json", "application/x-pem-file", "application/pkix-cert"}
        assert "406" in spec["paths"][path][method]["responses"]
    enroll = spec["paths"]["/{tenant}/seacat/enroll"]["put"]
    assert "application/octet-stream" in enroll["requestBody"]["content"]
    assert set(enroll["responses"]["200"]["content"]) == {"application/pkix-cert"}
    assert set(enroll["responses"]["202"]["content"]) == {"application/json"}


def test_the_spec_is_served_as_json_and_is_404_where_it_is_not_deployed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, spec: dict[str, Any]
) -> None:
    from chalice.test import Client

    from app import app
    from chalicelib.api import openapi

    with Client(app, stage_name="test", project_dir=str(ROOT)) as client:
        r = client.http.get("/openapi.json")
        assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
        assert r.json_body == spec
        # On Lambda only app.py and chalicelib/ are there: no docs/openapi.yaml.
        monkeypatch.setattr(openapi, "SPEC", tmp_path / "docs" / "openapi.yaml")
        monkeypatch.setattr(openapi.load_spec, "__defaults__", (tmp_path / "docs" / "openapi.yaml",))
        r = client.http.get("/openapi.json")
        assert r.status_code == 404
        assert r.json_body["error"] == "NotFound" and r.json_body["message"]
