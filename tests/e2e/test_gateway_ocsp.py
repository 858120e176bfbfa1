"""Debian's NGINX with the rendered template in ssl_ocsp mode (`render --ocsp`): a good client certificate
passes, a revoked one is refused with 400 by NGINX's own OCSP check before any request is read (the
auth_request check would answer 403), and nothing reaches the upstream."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, revoke, setup_tenant
from tests.e2e.test_gateway import (
    Gateway,
    enroll,
    pki,  # noqa: F401  (the module's PKI fixture: make run's stack with no revocation cache)
    start_gateway,
    start_upstream,
    stop_process,
    stop_upstream,
)

TENANT = "gateway-ocsp"


def raw_request(
    gateway: Gateway, ctx: ssl.SSLContext, session: ssl.SSLSession | None = None
) -> tuple[bytes, ssl.SSLSession | None, bool]:
    """GET /protected over a new connection (resuming ``session`` if given): the status line, the
    session, and whether it was resumed."""
    sock = ctx.wrap_socket(
        socket.create_connection(("127.0.0.1", gateway.port), timeout=10), server_hostname="127.0.0.1", session=session
    )
    with sock:
        sock.sendall(b"GET /protected HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        for _ in range(1000):  # bounded: the answer is small and the server closes
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n")[0], sock.session, bool(sock.session_reused)


def access_line(gateway: Gateway, status: str) -> str:
    """The access log's last line with ``status``: NGINX writes it just after the answer has left, so it
    is looked for until it is there (bounded: 5 s)."""
    log = gateway.out / "logs" / "nginx-access-ssl.log"
    deadline = time.monotonic() + 5
    while True:
        lines = [line for line in log.read_text().splitlines() if status in line]
        if lines or time.monotonic() > deadline:
            assert lines, log.read_text()[-2000:]
            return lines[-1]
        time.sleep(0.02)  # polling a file NGINX appends to


@pytest.fixture(scope="module")
def ocsp_gateway(pki: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:  # noqa: F811
    setup_tenant(pki, TENANT)
    upstream = start_upstream()
    try:
        # No OCSP cache: each full handshake asks the responder, so the first one after the revocation
        # is refused (with the cache, the answer's nextUpdate decides: see bench/revocation_latency.py).
        running = start_gateway(
            pki, TENANT, tmp_path_factory.mktemp("gateway-ocsp"), upstream, "--ocsp", "--no-ocsp-cache"
        )
        try:
            yield running
        finally:
            stop_process(running.process)
    finally:
        stop_upstream(upstream)


def test_an_auth_request_denial_names_its_reason_in_the_access_log(pki: Stack, tmp_path: Path) -> None:  # noqa: F811
    """Without --ocsp: a revoked certificate passes NGINX's checks and nginx_authenticate refuses it (403);
    the access log has the PKI's reason code, the client only the bare 403 page."""
    tenant = "gateway-reason"
    setup_tenant(pki, tenant)
    upstream = start_upstream()
    try:
        gateway = start_gateway(pki, tenant, tmp_path / "gw", upstream, "--auth-cache-valid", "0s")
        try:
            state = tmp_path / "device"
            enroll(f"https://127.0.0.1:{gateway.port}/seacat", gateway.server_cert, state)
            assert gateway.request("/protected", device=state)[0] == 200
            revoke(pki, tenant, (state / "seacat_cert.der").read_bytes(), reason=None)
            status, headers, body = gateway.request("/protected", device=state)
            assert status == 403
            assert b"revoked" not in body and "x-seacat-reason" not in headers
            line = access_line(gateway, '" 403 ')
            assert 'verify="SUCCESS"' in line and 'refused="certificate_revoked"' in line, line
        finally:
            stop_process(gateway.process)
    finally:
        stop_upstream(upstream)


def test_rendered_conf_checks_client_certificates_by_ocsp(ocsp_gateway: Gateway) -> None:
    conf = (ocsp_gateway.out / "nginx.conf").read_text()
    assert "ssl_ocsp on;" in conf
    assert f"ssl_ocsp_responder {ocsp_gateway.pki.url}/{TENANT}/ocsp;" in conf


def test_good_passes_and_revoked_is_refused_before_any_request(ocsp_gateway: Gateway, tmp_path: Path) -> None:
    gateway = ocsp_gateway
    state = tmp_path / "device"
    enroll(f"https://127.0.0.1:{gateway.port}/seacat", gateway.server_cert, state)
    status, _, body = gateway.request("/protected", device=state)
    assert status == 200, body
    assert json.loads(body)["path"] == "/protected"
    tls12 = gateway.context(state, tls12=True)
    status_line, session, _ = raw_request(gateway, tls12)
    assert status_line == b"HTTP/1.1 200 OK"
    seen = gateway.upstream.count()

    revoke(gateway.pki, TENANT, (state / "seacat_cert.der").read_bytes())
    status, _, body = gateway.request("/protected", device=state)
    # 400 "The SSL certificate error": NGINX's OCSP check, not auth_request (which answers 403).
    assert status == 400, body
    assert b"SSL certificate error" in body
    assert gateway.upstream.count() == seen
    # Whoever debugs it sees why in the gateway's access log; the client saw only the bare 400 page.
    assert 'verify="FAILED:certificate revoked"' in access_line(gateway, '" 400 ')
    assert b"revoked" not in body
    # A TLS session of before the revocation, resumed: NGINX checks it by OCSP again.
    status_line, _, reused = raw_request(gateway, tls12, session)
    assert reused and status_line == b"HTTP/1.1 400 Bad Request"
    assert gateway.upstream.count() == seen
    # Another device of the tenant still passes.
    other = tmp_path / "other"
    enroll(f"https://127.0.0.1:{gateway.port}/seacat", gateway.server_cert, other)
    status, _, body = gateway.request("/protected", device=other)
    assert status == 200, body


def test_responder_down_fails_closed(pki: Stack, tmp_path: Path) -> None:  # noqa: F811
    """The OCSP responder unreachable (here: a closed port): a good certificate is refused (400), never
    let through unchecked, and nothing reaches the upstream."""
    tenant = "gateway-ocsp-down"
    setup_tenant(pki, tenant)
    upstream = start_upstream()
    try:
        down = f"http://127.0.0.1:9/{tenant}/ocsp"  # discard port: nothing listens
        gateway = start_gateway(
            pki, tenant, tmp_path / "gw", upstream, "--ocsp", "--no-ocsp-cache", "--ocsp-responder", down
        )
        try:
            state = tmp_path / "device"
            enroll(f"https://127.0.0.1:{gateway.port}/seacat", gateway.server_cert, state)
            status, _, body = gateway.request("/protected", device=state)
            assert status == 400 and b"SSL certificate error" in body, (status, body)
            assert upstream.count() == 0
        finally:
            stop_process(gateway.process)
    finally:
        stop_upstream(upstream)
