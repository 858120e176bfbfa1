"""docs/api.md and docs/reliability.md against the app: the routes, who may call them, what a token gets.

Nothing here lists today's routes. The routes come from ``app.routes``; their classes (public, admin
of a tenant, operator only) from docs/api.md's route tables; what each class answers to each kind of
token from docs/reliability.md's table; and each route is then called through ``chalice.test.Client``
on the in-memory storage (no AWS) with every kind of token. A route added to the app without a line
in docs/api.md, a line for a route that is gone, a class the code does not enforce, or a status the
docs state wrongly fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pytest

from tests.conftest import PUBLIC_ROUTES, ROOT, memory_client

API_MD = ROOT / "docs" / "api.md"
RELIABILITY_MD = ROOT / "docs" / "reliability.md"
METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS")
OPERATOR = "sct_00000000000000dd_docs-routes-operator-token-0123"

# Routes of the app that docs/api.md does not name yet, with the class the code gives them: the SeaCat
# client routes take POST as well as the PUT docs/api.md names, and GET /openapi.json is only
# mentioned above the tables. Gaps in the doc, kept visible: once docs/api.md names one, it must leave
# this list (the test fails until it does), and no route may join it.
UNDOCUMENTED_TODAY: dict[tuple[str, str], str] = {}


def shape(path: str) -> str:
    """A path with its parameters unnamed: docs/api.md says {id} where the app says {cr_id}."""
    return re.sub(r"\{[^}/]+\}", "{}", path)


# --- docs/api.md ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocRoute:
    method: str
    path: str  # as docs/api.md writes it, without the query
    query: tuple[tuple[str, str], ...]  # the query it shows, e.g. (("state", "pending"), ("limit", ""))
    access: str  # "public", "tenant" or "operator"


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


@lru_cache(maxsize=1)
def api_md_routes() -> tuple[DocRoute, ...]:
    """Every route docs/api.md's route tables name: a section whose table's first column is "route".

    A first cell holds one or more `METHOD /path?query` spans; a span that is only `/last-segment`
    (`/reject` after `PUT .../approve`) is the previous route with its last segment replaced. Public
    routes are those of the section whose heading says "Public"; an admin route is operator only when
    its description starts with "operator only"."""
    routes: list[DocRoute] = []
    section = ""
    in_table = False
    for line in API_MD.read_text().splitlines():
        if line.startswith("#"):
            section, in_table = line.lstrip("#").strip(), False
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        cells = _cells(line)
        if not in_table:
            in_table = cells[0].lower() == "route"
            continue
        if set(cells[0]) <= set("-: "):
            continue
        public = "public" in section.lower()
        operator = cells[1].lower().startswith("operator only")
        access = "public" if public else "operator" if operator else "tenant"
        previous: DocRoute | None = None
        spans = re.findall(r"`([^`]+)`", cells[0])
        assert spans, f"docs/api.md: a route table row without a route: {line}"
        for span in spans:
            match = re.fullmatch(rf"({'|'.join(METHODS)}) (/\S*)", span)
            if match:
                method, target = match.groups()
            else:
                assert previous is not None and re.fullmatch(r"/[^/\s?]+", span), (
                    f"docs/api.md: cannot read {span!r} in {line}"
                )
                method, target = previous.method, previous.path.rsplit("/", 1)[0] + span
            path, _, query = target.partition("?")
            pairs = tuple((k, v) for k, _, v in (p.partition("=") for p in query.split("&") if p))
            previous = DocRoute(method, path, pairs, access)
            routes.append(previous)
    return tuple(routes)


@lru_cache(maxsize=1)
def app_routes() -> dict[tuple[str, str], tuple[str, Any]]:
    """(method, path shape) -> (the app's path, its chalice RouteEntry)."""
    from app import app

    return {
        (method.upper(), shape(path)): (path, entry)
        for path, methods in app.routes.items()
        for method, entry in methods.items()
    }


def test_api_md_lists_every_route_of_the_app_with_its_method_and_nothing_else() -> None:
    documented = api_md_routes()
    keys = [(r.method, shape(r.path)) for r in documented]
    assert len(keys) == len(set(keys)), (
        f"docs/api.md names a route twice: {sorted(k for k in keys if keys.count(k) > 1)}"
    )
    in_app = set(app_routes())
    missing = in_app - set(keys)
    stale = set(keys) - in_app
    assert not stale, f"docs/api.md names routes the app does not have: {sorted(stale)}"
    known = set(UNDOCUMENTED_TODAY)
    assert missing <= known, f"routes of the app that docs/api.md does not name: {sorted(missing - known)}"
    assert missing == known, f"docs/api.md now names {sorted(known - missing)}: take them out of UNDOCUMENTED_TODAY"


def route_classes() -> dict[tuple[str, str], str]:
    """The routes of the app and their classes: docs/api.md's, or UNDOCUMENTED_TODAY's. Any other
    route of the app has no class here (and fails test_api_md_lists_every_route_...)."""
    documented = {(r.method, shape(r.path)): r.access for r in api_md_routes()}
    classes = {}
    for method, path in app_routes():
        if (method, path) in documented:
            classes[(method, path)] = documented[(method, path)]
        elif (method, path) in UNDOCUMENTED_TODAY:
            classes[(method, path)] = UNDOCUMENTED_TODAY[(method, path)]
    return classes


def test_the_public_routes_of_api_md_are_the_tests_public_routes() -> None:
    public = {route for route, access in route_classes().items() if access == "public"}
    assert public == {(m, shape(p)) for m, p in PUBLIC_ROUTES}


# --- docs/reliability.md's table: token x route class -> answer -----------------------------------

COLUMNS = {
    "public route": ("public", "own"),
    "admin route of its own tenant": ("tenant", "own"),
    "admin route of another tenant": ("tenant", "other"),
    "operator-only route": ("operator", "own"),
}
ROWS = ("none", "invalid", "a tenant's", "the operator's")


def reliability_table() -> dict[tuple[str, str, str], str]:
    """(caller row, route class, whose tenant) -> "answered" or a status, from docs/reliability.md."""
    lines = RELIABILITY_MD.read_text().splitlines()
    (start,) = [i for i, line in enumerate(lines) if line.startswith("| token |")]
    header = _cells(lines[start])
    assert header[1:] == list(COLUMNS), f"docs/reliability.md: the token table's columns changed: {header}"
    table = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = _cells(line)
        (row,) = [r for r in ROWS if cells[0] == r or cells[0].startswith(r + ":")]
        for column, cell in zip(COLUMNS, cells[1:], strict=False):
            assert cell == "answered" or re.fullmatch(r"[1-5]\d\d", cell), f"docs/reliability.md: {cell!r} in {line}"
            table[(row, *COLUMNS[column])] = cell
    assert {key[0] for key in table} == set(ROWS), "docs/reliability.md: the token table's rows changed"
    return table


@dataclass
class World:
    client: Any
    tokens: dict[str, list[dict[str, str]]]  # caller row -> the headers of each token of that kind


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with pytest.MonkeyPatch.context() as mp, memory_client(mp, OPERATOR) as (client, _):
        operator = {"Authorization": f"Bearer {OPERATOR}"}
        json_type = {"Content-Type": "application/json"}
        for tenant in ("alpha", "beta"):
            assert (
                client.http.put(f"/tenants/{tenant}", headers={**operator, **json_type}, body=b"{}").status_code == 201
            )

        def token() -> dict[str, str]:
            made = client.http.post("/tokens", headers={**operator, **json_type}, body=b'{"tenant": "alpha"}')
            assert made.status_code == 201, made.body
            return made.json_body  # type: ignore[no-any-return]

        alpha, revoked = token(), token()
        assert client.http.delete(f"/tokens/{revoked['tokenId']}", headers=operator).status_code == 200
        forged = alpha["token"][:-1] + ("A" if alpha["token"][-1] != "A" else "B")
        yield World(
            client,
            {
                "none": [{}],
                "invalid": [
                    {"Authorization": f"Bearer {revoked['token']}"},
                    {"Authorization": "Bearer sct_zz_not-a-token"},
                    {"Authorization": f"Bearer {forged}"},
                    {"Authorization": f"Basic {alpha['token']}"},
                    {"Authorization": "Bearer "},
                ],
                "a tenant's": [{"Authorization": f"Bearer {alpha['token']}"}],
                "the operator's": [operator],
            },
        )


def request_for(route: tuple[str, str], whose: str) -> tuple[str, str, dict[str, str], bytes] | None:
    """A concrete request for the route, on alpha ("own") or beta ("other"); None where the route
    names no tenant (then "another tenant" means nothing for it)."""
    method, path_shape = route
    path, entry = app_routes()[route]
    tenant = "alpha" if whose == "own" else "beta"
    values = {"tenant": tenant, "identity": "AAAAAAAAAAAAAAAA"}
    concrete = re.sub(r"\{([^}/]+)\}", lambda m: values.get(m.group(1), "0" * 96), path)
    documented = [r for r in api_md_routes() if (r.method, shape(r.path)) == route]
    query = documented[0].query if documented else ()
    pairs = [(k, tenant if k == "tenant" else v) for k, v in query if k == "tenant" or v]
    names_a_tenant = "{tenant}" in path or any(k == "tenant" for k, _ in pairs)
    if whose == "other" and not names_a_tenant:
        return None
    if pairs:
        concrete += "?" + "&".join(f"{k}={v}" for k, v in pairs)
    content_type = entry.content_types[0] if entry.content_types else "application/json"
    if content_type == "*/*":
        content_type = "text/plain"
    body = b"{}" if content_type == "application/json" and method in ("PUT", "POST") else b""
    return method, concrete, {"Content-Type": content_type}, body


def _unauthenticated(r: Any) -> bool:
    return (
        r.status_code == 401
        and r.headers.get("Content-Type", "").startswith("application/json")
        and r.json_body.get("error") == "Unauthenticated"
    )


def test_every_route_answers_each_kind_of_token_as_reliability_md_says(world: World) -> None:
    table = reliability_table()
    classes = route_classes()
    failures = []
    checked = 0
    for route in sorted(classes):
        access = classes[route]
        for (row, column_access, whose), expected in sorted(table.items()):
            if column_access != access:
                continue
            request = request_for(route, whose)
            if request is None:
                continue
            method, path, headers, body = request
            if access == "public":  # the answer without a token is the answer whatever the token
                baseline = world.client.http.request(method, path, headers=headers, body=body)
                assert not _unauthenticated(baseline), (route, baseline.body)
            for token in world.tokens[row]:
                r = world.client.http.request(method, path, headers={**headers, **token}, body=body)
                checked += 1
                if expected == "answered":
                    ok = (
                        r.status_code == baseline.status_code if access == "public" else r.status_code not in (401, 403)
                    )
                else:
                    ok = r.status_code == int(expected)
                    if ok and r.status_code in (401, 403, 404):  # the API's error for it, not another one
                        ok = (
                            r.json_body.get("error")
                            == {401: "Unauthenticated", 403: "Forbidden", 404: "NotFound"}[r.status_code]
                        )
                if not ok:
                    failures.append(
                        f"{method} {path} with {row} token {token.get('Authorization', '')[:12]!r}: "
                        f"{r.status_code} {r.body[:120]!r}, docs/reliability.md says {expected}"
                    )
    assert not failures, "\n".join(failures)
    assert checked >= len(classes) * 2


def test_a_tenant_token_cannot_ask_for_the_events_of_no_tenant(world: World) -> None:
    """docs/api.md: GET /audit's `tenant=_` is for operator tokens only (a 403 for a tenant's)."""
    tenant, operator = world.tokens["a tenant's"][0], world.tokens["the operator's"][0]
    r = world.client.http.get("/audit?tenant=_", headers=tenant)
    assert r.status_code == 403 and r.json_body["error"] == "Forbidden"
    assert world.client.http.get("/audit?tenant=_", headers=operator).status_code == 200
