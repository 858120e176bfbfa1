"""The console's routes through chalice's test client on the in-memory storage: its files with their
security headers and nothing else, and the two admin routes it relies on (GET /whoami, GET /tenants).
The page itself runs in a real browser in tests/e2e/test_console.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROOT, memory_client

TOKEN = "sct_00000000000000cc_console-operator-token-0123456789"
CONSOLE = ROOT / "chalicelib" / "console"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with memory_client(monkeypatch, TOKEN) as (test_client, _):
        yield test_client


def operator() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def test_every_console_file_is_served_with_its_type_and_the_policy(client: Any) -> None:
    from chalicelib.api.console import CSP

    names = sorted(p.name for p in CONSOLE.iterdir() if p.is_file())
    assert {"index.html", "app.js", "api.js", "dom.js", "ui.js", "style.css"} <= set(names)
    types = {
        ".html": "text/html; charset=utf-8",
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
    }
    for name in names:
        r = client.http.get(f"/console/{name}")
        assert r.status_code == 200, name
        assert r.body == (CONSOLE / name).read_bytes()
        suffix = name[name.rindex(".") :]
        assert r.headers["Content-Type"] == types.get(suffix, "image/svg+xml")
        assert r.headers["Content-Security-Policy"] == CSP
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert r.headers["X-Frame-Options"] == "DENY"
    index = client.http.get("/console/")
    assert index.status_code == 200 and index.body == (CONSOLE / "index.html").read_bytes()
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"):
        assert directive in CSP
    assert "unsafe" not in CSP and "*" not in CSP and "http" not in CSP


def test_console_without_its_slash_redirects_under_itself(client: Any) -> None:
    r = client.http.get("/console")
    assert r.status_code == 308 and r.headers["Location"] == "console/"


@pytest.mark.parametrize("name", ["nope.js", "..", "console.py", "__init__.py", "app.py", "index.htm", ".env"])
def test_only_the_console_files_are_served(client: Any, name: str) -> None:
    r = client.http.get(f"/console/{name}")
    assert r.status_code == 404
    assert r.json_body["error"] == "NotFound" and r.json_body["field"] == "asset"


def test_the_sign_in_form_never_puts_the_token_in_a_url() -> None:
    html = (CONSOLE / "index.html").read_text()
    assert '<form id="signin-form" method="post"' in html  # were the script not to run: no GET with ?token=
    assert '<input id="token" name="token" type="password"' in html
    assert "sessionStorage" in (CONSOLE / "api.js").read_text()
    assert "localStorage" not in "".join(p.read_text() for p in CONSOLE.glob("*.js"))


def test_whoami_tells_the_token_and_its_reach(client: Any) -> None:
    r = client.http.get("/whoami", headers=operator())
    assert r.status_code == 200
    assert r.json_body == {"tokenId": "00000000000000cc", "tenant": None, "operator": True}
    assert r.headers["Cache-Control"] == "no-store"
    assert client.http.put("/tenants/alpha", headers=operator(), body="{}").status_code == 201
    made = client.http.post("/tokens", headers=operator(), body='{"tenant": "alpha"}').json_body
    r = client.http.get("/whoami", headers={"Authorization": f"Bearer {made['token']}"})
    assert r.json_body == {"tokenId": made["tokenId"], "tenant": "alpha", "operator": False}
    assert made["token"] not in r.body.decode()
    r = client.http.get("/whoami")
    assert r.status_code == 401 and r.json_body["error"] == "Unauthenticated"


def test_tenants_lists_every_tenant_for_the_operator_only(client: Any) -> None:
    r = client.http.get("/tenants", headers=operator())
    assert r.status_code == 200 and r.json_body == {"items": [], "count": 0}
    for name in ("zeta", "alpha", "mid"):
        assert client.http.put(f"/tenants/{name}", headers=operator(), body="{}").status_code == 201
    r = client.http.get("/tenants", headers=operator())
    assert r.json_body == {"items": [{"tenant": "alpha"}, {"tenant": "mid"}, {"tenant": "zeta"}], "count": 3}
    token = client.http.post("/tokens", headers=operator(), body='{"tenant": "alpha"}').json_body["token"]
    r = client.http.get("/tenants", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403 and r.json_body["error"] == "Forbidden"
