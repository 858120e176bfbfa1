"""embedded/wsgi.py: a WSGI request handed to Chalice's local gateway and its answer framed back, as
`chalice local` does, on the in-memory ports (no server, no socket)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from seacat_client.cr import build_cr
from tests.conftest import REFERENCE_SPEC, TEST_ENV, reset_caches

TOKEN = "sct_00000000000000cc_wsgi-operator-token-0123456789"


@pytest.fixture
def wsgi(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from app import app
    from chalicelib import context
    from chalicelib.service import tokens
    from embedded.wsgi import ChaliceWSGI, chalice_config

    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    reset_caches()
    context.use_memory()
    tokens.install_operator_token(TOKEN)
    original = app.__class__
    try:
        yield ChaliceWSGI(app, chalice_config("test"))
    finally:
        app.__class__ = original  # the thread-local current_request of the adapter, for this test only
        context.reset()
        reset_caches()


def call(
    application: Any, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None, **extra: Any
) -> tuple[int, list[tuple[str, str]], bytes]:
    path, _, query = target.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "RAW_URI": target,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
    }
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    environ.update(extra)
    started: list[Any] = []
    out = b"".join(application(environ, lambda status, hdrs: started.append((status, hdrs))))
    (status, response_headers), *_ = started
    names = [n.lower() for n, _ in response_headers]
    assert names.count("content-length") == 1 and dict(response_headers)["Content-Length"] == str(len(out))
    return int(status.split()[0]), response_headers, out


def test_routes_bodies_and_errors_as_chalice_local(wsgi: Any) -> None:
    status, headers, body = call(wsgi, "GET", "/health")
    assert status == 200 and dict(headers)["Content-Type"] == "application/json" and json.loads(body)
    assert dict(headers)["X-Content-Type-Options"] == "nosniff"
    # no route: API Gateway's answer, from Chalice's gateway
    status, _, body = call(wsgi, "GET", "/no/such/route/here/at/all")
    assert status == 403 and b"Missing Authentication Token" in body
    # with a token: the same constant body (Chalice's gateway, as API Gateway, would quote the header)
    status, headers, body = call(wsgi, "GET", "/no/such/route/here/at/all", b"", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 403 and json.loads(body) == {"message": "Missing Authentication Token"}
    assert TOKEN.encode() not in body and TOKEN.split("_")[-1].encode() not in body
    assert dict(headers)["X-Content-Type-Options"] == "nosniff" and dict(headers)["Cache-Control"] == "no-store"
    # the app's own error shape; the Authorization header reaches it
    status, _, body = call(wsgi, "PUT", "/tenants/wsgi", b"{}", {"Content-Type": "application/json"})
    assert status == 401 and json.loads(body)["error"] == "Unauthenticated"
    admin = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    assert call(wsgi, "PUT", "/tenants/wsgi", b"{}", admin)[0] == 201
    assert call(wsgi, "PUT", "/wsgi/x509/self-signed", REFERENCE_SPEC.encode(), admin)[0] == 201
    # a binary body in, raw DER out (base64 between the app and the gateway, decoded here)
    key = ec.generate_private_key(ec.SECP256R1())
    status, headers, der = call(
        wsgi, "PUT", "/wsgi/seacat/enroll", build_cr(key, application="w"), {"Content-Type": "application/octet-stream"}
    )
    assert status == 200 and dict(headers)["Content-Type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(der).public_key() == key.public_key()
    # a query string reaches the route
    status, _, body = call(wsgi, "GET", "/audit?limit=1", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status in (200, 400), body


def test_a_chunked_body_is_read_and_an_oversized_one_refused_unread(wsgi: Any) -> None:
    from embedded.wsgi import MAX_BODY

    admin = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    status, _, _ = call(wsgi, "PUT", "/tenants/chunked", b"", admin, HTTP_TRANSFER_ENCODING="chunked")
    assert status == 201  # an empty chunked body: no body
    unread = io.BytesIO(b"x" * 10)
    status, headers, body = call(
        wsgi, "PUT", "/tenants/big", b"", admin, CONTENT_LENGTH=str(MAX_BODY + 1), **{"wsgi.input": unread}
    )
    assert status == 413 and json.loads(body)["error"] == "PayloadTooLarge" and unread.tell() == 0
    assert dict(headers)["Content-Type"] == "application/json"


def test_hop_by_hop_headers_never_leave_the_application() -> None:
    from embedded.wsgi import ChaliceWSGI, request_headers, request_target

    started: list[Any] = []
    ChaliceWSGI._send(
        lambda status, hdrs: started.append(hdrs),
        204,
        {"Connection": "close", "Transfer-Encoding": "chunked", "Set-Cookie": ["a=1", "b=2"]},
        None,
    )
    assert started == [[("Content-Length", "0"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]]
    assert request_headers({"HTTP_X_SSL_CLIENT_VERIFY": "SUCCESS", "CONTENT_TYPE": "a/b", "CONTENT_LENGTH": ""}) == {
        "X-Ssl-Client-Verify": "SUCCESS",
        "Content-Type": "a/b",
    }
    assert request_target({"PATH_INFO": "/t/seacat/get/A B", "QUERY_STRING": "x=1"}) == "/t/seacat/get/A%20B?x=1"


def test_remembered_route_matches_are_the_scans_answers_and_each_callers_own() -> None:
    from chalice.local import RouteMatcher

    from app import app
    from embedded.wsgi import _RememberingRouteMatcher

    routes = list(app.routes)
    scan, remembering = RouteMatcher(routes), _RememberingRouteMatcher(routes, size=2)
    targets = [
        "/acme/seacat/enroll",
        "/acme/seacat/nginx_authenticate",
        "/audit?tenant=acme&limit=5&type=x&type=y",
        "/tenants/acme/",
        "/acme/seacat/enroll",  # again, after the cache evicted it
    ]
    for target in targets:
        first = remembering.match_route(target)
        assert first == scan.match_route(target)
        first.captured["tenant"] = "changed"
        for values in first.query_params.values():
            values.append("changed")
        assert remembering.match_route(target) == scan.match_route(target)
    for unknown in ("/no/such/route/at/all/here", "/no/such/route/at/all/here"):
        with pytest.raises(ValueError):
            remembering.match_route(unknown)


def test_long_targets_and_queries_are_matched_but_not_remembered() -> None:
    from chalice.local import RouteMatcher

    from app import app
    from embedded.wsgi import _RememberingRouteMatcher

    routes = list(app.routes)
    scan, remembering = RouteMatcher(routes), _RememberingRouteMatcher(routes, size=8)
    long_one = "/acme/ocsp/" + "A" * 4000
    for target in (long_one, "/acme/seacat/cr?state=pending", "/acme/seacat/enroll"):
        assert remembering.match_route(target) == scan.match_route(target)
    assert remembering._remembered.cache_info().currsize == 1  # the short one without a query only


@pytest.mark.parametrize(
    ("environ", "target"),
    [
        ({"RAW_URI": "//evil.example/console/"}, "/evil.example/console/"),
        ({"RAW_URI": "///console/app.js?x=1"}, "/console/app.js?x=1"),
        ({"PATH_INFO": "//evil.example/console/", "QUERY_STRING": ""}, "/evil.example/console/"),
        ({"RAW_URI": "/acme/x509/ca"}, "/acme/x509/ca"),
        ({"PATH_INFO": "/acme/ocsp/MEow", "QUERY_STRING": "a=b"}, "/acme/ocsp/MEow?a=b"),
        # A decoded PATH_INFO (granian): encoded again; an OCSP GET's base64 whole, its "/" included.
        ({"PATH_INFO": "/acme/ocsp/ME/ow+A==", "QUERY_STRING": ""}, "/acme/ocsp/ME%2Fow%2BA%3D%3D"),
        ({"PATH_INFO": "/acme/seacat/get/a b%", "QUERY_STRING": ""}, "/acme/seacat/get/a%20b%25"),
        ({"PATH_INFO": "//evil.example/ocsp/x/y", "QUERY_STRING": ""}, "/evil.example/ocsp/x%2Fy"),
        ({"PATH_INFO": "//t/ocsp/AB/CD", "QUERY_STRING": ""}, "/t/ocsp/AB%2FCD"),
        # PEP 3333: each byte of the path a Latin-1 character; encoded again byte for byte.
        ({"PATH_INFO": "/t/seacat/get/caf\xc3\xa9", "QUERY_STRING": ""}, "/t/seacat/get/caf%C3%A9"),
        # A ";" (sent as %3B) stays in its segment: the gateway would otherwise cut the path there.
        ({"PATH_INFO": "/tenants/foo;bar", "QUERY_STRING": ""}, "/tenants/foo%3Bbar"),
    ],
)
def test_a_target_with_leading_slashes_is_a_path_not_a_host(environ: dict[str, str], target: str) -> None:
    from embedded.wsgi import request_target

    assert request_target(environ) == target


def test_the_console_is_not_served_under_a_host_looking_path(wsgi: Any) -> None:
    status, _, body = call(wsgi, "GET", "//evil.example/console/")
    assert status == 403 and b"<html" not in body.lower()  # no route, as API Gateway answers
    assert call(wsgi, "GET", "/console/")[0] == 200


def test_a_worker_forgets_environment_variables_that_read_as_request_data() -> None:
    from embedded.server import strip_request_lookalikes

    environ = {
        "HTTP_PROXY": "http://proxy.example",
        "REQUEST_URI": "/health",
        "RAW_URI": "/health",
        "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": "99999999",
        "PATH": "/usr/bin",
        "SEACAT_DATA_DIR": "/srv/seacat",
    }
    removed = strip_request_lookalikes(environ)
    assert sorted(removed) == ["CONTENT_LENGTH", "CONTENT_TYPE", "HTTP_PROXY", "RAW_URI", "REQUEST_URI"]
    assert environ == {"PATH": "/usr/bin", "SEACAT_DATA_DIR": "/srv/seacat"}


_BOOTING_WORKER = """
import os, signal, sys
import chalicelib.context as context
import embedded.wsgi as wsgi
from embedded import server

context.reset = context.current = lambda: None  # no store: this checks the stop, not the boot
wsgi.create_application = lambda: "the app"
server._hold_stops_from_the_fork()  # what the fork runs in every new worker
if sys.argv[1] == "stopped":
    os.kill(os.getpid(), signal.SIGTERM)  # the server's stop, while the worker boots
    assert server._stop_held.is_set()
try:
    print("serves", server.worker_application("embedded.wsgi:application", parent=os.getppid()))
except SystemExit as leaving:
    print("leaves", leaving.code)
"""


@pytest.mark.parametrize(("case", "expected"), [("stopped", "leaves 0"), ("running", "serves the app")])
def test_a_worker_stopped_while_it_boots_leaves_instead_of_serving(case: str, expected: str) -> None:
    """A SIGTERM that reaches a worker before granian's handler is in would be lost (the handler the fork
    copied stops nothing in a child) and the worker would serve on until killed: it is held from the
    fork on, and a worker that was stopped while booting leaves as its boot ends."""
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run(
        [sys.executable, "-c", _BOOTING_WORKER, case],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == expected, (done.stdout, done.stderr[-2000:])


_STOP_AFTER_BOOT = """
import os, signal, threading, time
from embedded import server

server._hold_stops_from_the_fork()
os.kill(os.getpid(), signal.SIGTERM)  # the stop, in the instant between the boot and granian's handler
seen = []
done = threading.Event()

def granian(signum, frame):  # granian's handler, in before its serving loop waits: the first one lost
    seen.append(signum)
    if len(seen) >= 2:
        done.set()

threading.Thread(target=server._watch_parent, args=(os.getppid(),), daemon=True).start()
time.sleep(0.05)
signal.signal(signal.SIGTERM, granian)
print("stops seen", done.wait(5))
"""


def test_a_stop_held_through_the_boot_is_repeated_until_the_worker_is_gone() -> None:
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run(
        [sys.executable, "-c", _STOP_AFTER_BOOT],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == "stops seen True", (done.stdout, done.stderr[-2000:])
