"""The NGINX gateway end to end: `make run`'s stack, a tenant, the rendered gateway, real TLS clients.

All on 127.0.0.1: the local stack (moto server + `chalice local`), an echo upstream in a thread,
and a foreground NGINX started from infra/nginx/seacat-gateway.conf.template as rendered by
`python -m scripts.gateway render`, every file of it in a temporary directory.

NGINX is required in CI (.ci/run installs Debian's package); elsewhere the tests skip without it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.client import HTTPSConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import REFERENCE_SPEC
from tests.e2e.conftest import ROOT, Stack, free_port, http, revoke, setup_tenant, start_stack, stop_stack

TENANT = "gateway"
AUTH_CACHE_SECONDS = 1  # --auth-cache-valid: how long NGINX keeps a 200 of nginx_authenticate
REFERENCE_CIPHERS = ("ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305")


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):  # not on a non-root PATH
        found = "/usr/sbin/nginx"
    return found


# --- the upstream: echoes the headers it receives -------------------------------------------------


class EchoHandler(BaseHTTPRequestHandler):
    server: EchoServer

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        received = {"method": self.command, "path": self.path, "headers": {k: v for k, v in self.headers.items()}}
        with self.server.lock:
            self.server.received.append(received)
        body = json.dumps(received).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _echo

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class EchoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), EchoHandler)
        self.lock = threading.Lock()
        self.received: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def count(self) -> int:
        with self.lock:
            return len(self.received)


# --- the gateway ---------------------------------------------------------------------------------


@dataclass
class Gateway:
    port: int
    out: Path
    server_cert: Path
    pki: Stack
    upstream: EchoServer
    process: subprocess.Popen[bytes]
    log: Path
    devices: dict[str, Path] = field(default_factory=dict)

    def context(self, device: Path | None = None, *, tls12: bool = False, ciphers: str | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.server_cert))
        if tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        if ciphers:
            ctx.set_ciphers(ciphers)
        if device is not None:
            ctx.load_cert_chain(device / "seacat_cert.pem", device / "seacat_key.pem")
        return ctx

    def request(
        self,
        path: str,
        *,
        device: Path | None = None,
        headers: dict[str, str] | None = None,
        method: str = "GET",
        body: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        connection = HTTPSConnection("127.0.0.1", self.port, context=self.context(device), timeout=15)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def handshake(self, ctx: ssl.SSLContext, session: ssl.SSLSession | None = None) -> ssl.SSLSocket:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session)
        except BaseException:
            raw.close()
            raise
        # a short exchange NGINX answers by itself (404: the auth location is internal), so that
        # the session is complete whatever the TLS version
        sock.sendall(b"GET /_seacat_pki_auth HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        sock.recv(1)
        return sock


def require_nginx() -> str:
    nginx = find_nginx()
    if nginx is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed, and CI must run the gateway tests: install Debian's nginx in .ci/run")
        pytest.skip("nginx is not installed (apt-get install nginx); CI runs these tests")
    return nginx


def enroll(gateway_url: str, server_cert: Path, state: Path, *extra: str) -> str:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "seacat_client",
            "enroll",
            "--api-url",
            gateway_url,
            "--dir",
            str(state),
            "--cafile",
            str(server_cert),
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    pem = subprocess.run(
        [sys.executable, "-m", "seacat_client", "pem", "--dir", str(state)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert pem.returncode == 0, pem.stderr
    cert = x509.load_der_x509_certificate((state / "seacat_cert.der").read_bytes())
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value  # type: ignore[return-value]


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # NGINX: fast shutdown
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_nginx()
    # revocations show in nginx_authenticate at once: the gateway's own cache is the one under test
    running = start_stack(tmp_path_factory.mktemp("gateway-stack"), extra_env={"SEACAT_REVOCATION_CACHE_SECONDS": "0"})
    yield running
    stop_stack(running)


def start_gateway(
    pki: Stack, tenant: str, out: Path, upstream: EchoServer, *extra: str, server_cert: tuple[Path, Path] | None = None
) -> Gateway:
    """Render the gateway for `tenant` into `out` with the options `extra` (and no credential from
    this environment's SEACAT_GATEWAY_CREDENTIAL), check it with `nginx -t`, start NGINX in the foreground.
    ``server_cert``: (chain, key) to serve instead of a self-signed certificate."""
    nginx = require_nginx()
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if k != "SEACAT_GATEWAY_CREDENTIAL"}
    render = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.gateway",
            "render",
            "--tenant",
            tenant,
            "--pki-url",
            pki.url,
            "--out",
            str(out),
            "--listen",
            f"127.0.0.1:{port}",
            "--server-name",
            "127.0.0.1",
            *(
                ["--server-cert", str(server_cert[0]), "--server-key", str(server_cert[1])]
                if server_cert
                else ["--self-signed-server-cert"]
            ),
            "--upstream",
            upstream.url,
            "--auth-cache-valid",
            f"{AUTH_CACHE_SECONDS}s",
            # the test runs NGINX as root with every file in a private temporary directory
            "--user",
            "root",
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
    )
    assert render.returncode == 0, render.stdout + render.stderr
    assert server_cert is not None or "for local use only" in render.stdout
    conf = out / "nginx.conf"
    served = server_cert[0] if server_cert else out / "gateway_cert.pem"

    log = out / "nginx.stderr"
    command = [nginx, "-e", "stderr", "-p", str(out), "-c", str(conf)]
    check = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(
        [*command, "-g", "daemon off; error_log stderr;"],
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    running = Gateway(port, out, served, pki, upstream, process, log)
    try:
        deadline = time.monotonic() + 20
        for _ in range(200):
            if process.poll() is not None:
                pytest.fail("nginx exited:\n" + log.read_text()[-3000:])
            try:
                running.handshake(running.context()).close()
                break
            except (OSError, ssl.SSLError):
                if time.monotonic() > deadline:
                    pytest.fail("nginx did not accept TLS within 20 s:\n" + log.read_text()[-3000:])
                time.sleep(0.1)
    except BaseException:
        stop_process(process)
        raise
    return running


def start_upstream() -> EchoServer:
    upstream = EchoServer()
    threading.Thread(target=upstream.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return upstream


def stop_upstream(upstream: EchoServer) -> None:
    upstream.shutdown()
    upstream.server_close()


@pytest.fixture(scope="module")
def gateway(pki: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    require_nginx()
    auth = {"Authorization": f"Bearer {pki.token}", "Content-Type": "application/json"}
    status, _, body = http("PUT", f"{pki.url}/tenants/{TENANT}", b"{}", auth)
    assert status in (200, 201), body
    status, _, body = http("PUT", f"{pki.url}/{TENANT}/x509/self-signed", REFERENCE_SPEC.encode(), auth)
    assert status == 201, body

    upstream = start_upstream()
    try:
        running = start_gateway(pki, TENANT, tmp_path_factory.mktemp("gateway"), upstream)
        try:
            yield running
        finally:
            stop_process(running.process)
    finally:
        stop_upstream(upstream)


@pytest.fixture(scope="module")
def device(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A client enrolled through the gateway's public /seacat/ location, as a G3 app would."""
    state = tmp_path_factory.mktemp("device")
    identity = enroll(f"https://127.0.0.1:{gateway.port}/seacat", gateway.server_cert, state)
    return state, identity


def foreign_client(directory: Path) -> Path:
    """A client certificate from a throwaway CA that the gateway has never heard of."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Throwaway CA")])
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AAAAAAAAAAAAAAAA")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "seacat_cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "seacat_key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return directory


def wait_for_status(gateway: Gateway, device: Path, want: int, limit: float) -> tuple[int, float]:
    """Ask the protected location until it answers `want` (bounded: `limit` seconds, 60 tries)."""
    started = time.monotonic()
    status = 0
    for _ in range(60):
        status, _, _ = gateway.request("/protected", device=device)
        if status == want or time.monotonic() - started > limit:
            break
        time.sleep(0.25)
    return status, time.monotonic() - started


# --- 1. an enrolled client reaches the upstream with its identity --------------------------------


def test_enrolled_client_reaches_upstream_with_identity(gateway: Gateway, device: tuple[Path, str]) -> None:
    state, identity = device
    status, headers, body = gateway.request(
        "/protected/resource?x=1", device=state, headers={"X-SeaCat-Identity": "FORGEDFORGEDFORG"}
    )
    assert status == 200, body
    seen = json.loads(body)
    assert seen["path"] == "/protected/resource?x=1"
    # the identity comes from the PKI's answer; the client's own header is replaced
    assert seen["headers"]["X-SeaCat-Identity"] == identity
    assert seen["headers"]["X-Forwarded-Proto"] == "https"
    assert seen["headers"]["X-Real-IP"] == "127.0.0.1"
    assert headers["strict-transport-security"] == "max-age=31536000"
    assert headers["server"] == "nginx"  # server_tokens off: no version
    # again, from NGINX's authentication cache this time: the identity still comes through
    status, _, body = gateway.request("/protected/again", device=state)
    assert status == 200 and json.loads(body)["headers"]["X-SeaCat-Identity"] == identity


def _established_to(pids: set[int], port: int) -> int:
    """How many TCP connections the processes ``pids`` hold open (ESTABLISHED) to ``port`` on this host."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if fields[3] == "01" and remote_port == port and fields[9] in inodes:
                count += 1
    return count


def test_the_authentication_subrequest_keeps_its_connection_to_the_pki(gateway: Gateway, tmp_path: Path) -> None:
    """A new client's first request makes NGINX ask the PKI; the connection it asked on stays open in
    the upstream's keepalive pool (without it, NGINX closes it after every answer)."""
    state = tmp_path / "device"
    state.mkdir()
    enroll(f"https://127.0.0.1:{gateway.port}/seacat", gateway.server_cert, state)
    status, _, body = gateway.request("/kept/alive", device=state)  # not in NGINX's cache yet
    assert status == 200, body
    nginx = {
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _pgid(int(entry.name)) == gateway.process.pid
    }
    pki_port = int(gateway.pki.url.rsplit(":", 1)[1])
    assert _established_to(nginx, pki_port) >= 1


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def test_public_seacat_location_serves_the_peer_lookup(gateway: Gateway, device: tuple[Path, str]) -> None:
    state, identity = device
    status, headers, body = gateway.request(f"/seacat/get/{identity}")
    assert status == 200, body
    assert body == (state / "seacat_cert.der").read_bytes()


def test_auth_location_is_internal(gateway: Gateway, device: tuple[Path, str]) -> None:
    status, _, _ = gateway.request("/_seacat_pki_auth", device=device[0])
    assert status == 404


# --- 2. no client certificate --------------------------------------------------------------------


def test_no_client_certificate_is_401(gateway: Gateway) -> None:
    before = gateway.upstream.count()
    status, headers, _ = gateway.request("/protected", headers={"X-SeaCat-Identity": "FORGEDFORGEDFORG"})
    assert status == 401
    assert headers["strict-transport-security"] == "max-age=31536000"
    assert gateway.upstream.count() == before


# --- 3. a certificate of another CA --------------------------------------------------------------


def test_certificate_of_another_ca_is_refused_by_nginx(gateway: Gateway, tmp_path: Path) -> None:
    # ssl_verify_client optional: the handshake completes, NGINX records the verification failure
    # and answers 400 ("The SSL certificate error") itself, before any location runs, so neither
    # the PKI nor the upstream sees the request.
    before = gateway.upstream.count()
    status, _, body = gateway.request("/protected", device=foreign_client(tmp_path / "foreign"))
    assert status == 400
    assert b"The SSL certificate error" in body
    assert gateway.upstream.count() == before


# --- 4. revocation -------------------------------------------------------------------------------


def test_revoked_certificate_is_403_after_the_auth_cache(gateway: Gateway, tmp_path: Path) -> None:
    state = tmp_path / "revoked"
    enroll(f"https://127.0.0.1:{gateway.port}/seacat", gateway.server_cert, state)
    status, _, body = gateway.request("/protected", device=state)
    assert status == 200, body  # and now cached by NGINX for AUTH_CACHE_SECONDS

    revoke(gateway.pki, TENANT, (state / "seacat_cert.der").read_bytes())
    # the PKI itself says no at once (SEACAT_REVOCATION_CACHE_SECONDS=0) ...
    pem = (state / "seacat_cert.pem").read_bytes()
    status, _, body = http(
        "PUT", f"{gateway.pki.url}/{TENANT}/seacat/nginx_authenticate", pem, {"X-SSL-Client-Verify": "SUCCESS"}
    )
    assert status == 403, body
    # ... and the gateway once its cached 200 has expired (second granularity: at most ~2 s)
    status, elapsed = wait_for_status(gateway, state, 403, limit=AUTH_CACHE_SECONDS + 4)
    assert status == 403, f"still {status} {elapsed:.1f} s after the revocation"
    assert elapsed <= AUTH_CACHE_SECONDS + 3


def test_revoked_identity_is_403_after_the_auth_cache(gateway: Gateway, tmp_path: Path) -> None:
    state = tmp_path / "revoked-identity"
    identity = enroll(f"https://127.0.0.1:{gateway.port}/seacat", gateway.server_cert, state)
    status, _, body = gateway.request("/protected", device=state)
    assert status == 200, body
    status, _, body = http(
        "PUT",
        f"{gateway.pki.url}/{TENANT}/seacat/identity/{identity}/revoke",
        json.dumps({"reason": "keyCompromise"}).encode(),
        {"Authorization": f"Bearer {gateway.pki.token}", "Content-Type": "application/json"},
    )
    assert status == 200, body
    status, elapsed = wait_for_status(gateway, state, 403, limit=AUTH_CACHE_SECONDS + 4)
    assert status == 403, f"still {status} {elapsed:.1f} s after the revocation"


# --- 5. the gateway credential ------------------------------------------------------------------

CREDENTIAL_TENANT = "gateway-credential"
CREDENTIAL_HEADER = "X-SeaCat-Gateway-Credential"


@dataclass
class CredentialGateways:
    """One tenant that requires a gateway credential, and two gateways for it: rendered with the
    credential (from a file, as the API gave it) and without, in front of one upstream."""

    credential: str
    with_credential: Gateway
    without_credential: Gateway


@pytest.fixture(scope="module")
def credential_gateways(pki: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CredentialGateways]:
    require_nginx()
    setup_tenant(pki, CREDENTIAL_TENANT)
    auth = {"Authorization": f"Bearer {pki.token}"}
    status, _, body = http("POST", f"{pki.url}/{CREDENTIAL_TENANT}/gateway/credential", None, auth)
    assert status == 201, body
    answer = json.loads(body)
    assert answer["header"] == CREDENTIAL_HEADER and answer["valid"] == 1
    credential = str(answer["credential"])
    status, _, body = http("GET", f"{pki.url}/tenants/{CREDENTIAL_TENANT}", None, auth)
    assert status == 200 and json.loads(body)["config"]["gatewayCredentials"] == 1, body
    assert credential.encode() not in body

    secrets = tmp_path_factory.mktemp("credential")
    secret = secrets / "gateway_credential"
    secret.touch(mode=0o600)
    secret.write_text(credential + "\n")

    upstream = start_upstream()
    started: list[Gateway] = []
    try:
        out = tmp_path_factory.mktemp("gateway-with-credential")
        started.append(start_gateway(pki, CREDENTIAL_TENANT, out, upstream, "--gateway-credential-file", str(secret)))
        conf = out / "nginx.conf"
        assert stat.S_IMODE(conf.stat().st_mode) == 0o600  # it holds the credential now
        assert credential in conf.read_text()
        started.append(
            start_gateway(pki, CREDENTIAL_TENANT, tmp_path_factory.mktemp("gateway-without-credential"), upstream)
        )
        yield CredentialGateways(credential, started[0], started[1])
    finally:
        for running in started:
            stop_process(running.process)
        stop_upstream(upstream)


def test_gateway_credential_lets_a_valid_client_through_only_where_rendered(
    credential_gateways: CredentialGateways, tmp_path: Path
) -> None:
    gateways = credential_gateways
    with_credential, without = gateways.with_credential, gateways.without_credential
    state = tmp_path / "device"
    identity = enroll(f"https://127.0.0.1:{with_credential.port}/seacat", with_credential.server_cert, state)

    # rendered with the credential: through to the upstream, which never sees a credential header,
    # neither the gateway's nor one the client sent
    before = with_credential.upstream.count()
    status, _, body = with_credential.request(
        "/protected", device=state, headers={CREDENTIAL_HEADER: "sgc_" + "A" * 43}
    )
    assert status == 200, body
    seen = json.loads(body)
    assert seen["headers"]["X-SeaCat-Identity"] == identity
    assert CREDENTIAL_HEADER.lower() not in {name.lower() for name in seen["headers"]}

    # the same gateway rendered without it: the PKI answers 401, and so does NGINX (auth_request
    # hands a 401 back as it is); a client sending the credential itself does not help
    status, _, body = without.request("/protected", device=state, headers={CREDENTIAL_HEADER: gateways.credential})
    assert status == 401, body
    assert with_credential.upstream.count() == before + 1

    # ... and that 401 is the credential's: the PKI asked directly
    pem = (state / "seacat_cert.pem").read_bytes()
    url = f"{with_credential.pki.url}/{CREDENTIAL_TENANT}/seacat/nginx_authenticate"
    status, _, body = http("PUT", url, pem, {"X-SSL-Client-Verify": "SUCCESS"})
    assert (status, body) == (401, b"gateway credential missing or wrong\n")
    status, _, body = http("PUT", url, pem, {"X-SSL-Client-Verify": "SUCCESS", CREDENTIAL_HEADER: gateways.credential})
    assert status == 200, body


def test_enrolment_location_never_carries_a_gateway_credential(credential_gateways: CredentialGateways) -> None:
    """/seacat/ passes the client's headers on, to every public route of the tenant: a credential a
    client sends is dropped there, and the gateway adds its own only to its authentication subrequest.
    (The PKI checks the credential before the certificate: with one, this body would be refused as
    "client certificate cannot be parsed" instead.)"""
    gateway = credential_gateways.with_credential
    headers = {"X-SSL-Client-Verify": "SUCCESS", "Content-Type": "application/x-pem-file"}
    for sent in ({}, {CREDENTIAL_HEADER: credential_gateways.credential}):
        status, _, body = gateway.request(
            "/seacat/nginx_authenticate", method="PUT", body=b"not a certificate", headers={**headers, **sent}
        )
        assert (status, body) == (401, b"gateway credential missing or wrong\n"), sent
    status, _, body = http(
        "PUT",
        f"{gateway.pki.url}/{CREDENTIAL_TENANT}/seacat/nginx_authenticate",
        b"not a certificate",
        {**headers, CREDENTIAL_HEADER: credential_gateways.credential},
    )
    assert (status, body) == (401, b"client certificate cannot be parsed\n")


# --- 6. TLS settings -----------------------------------------------------------------------------


@pytest.mark.parametrize("cipher", REFERENCE_CIPHERS)
def test_each_reference_cipher_negotiates_with_tls12(gateway: Gateway, cipher: str) -> None:
    with gateway.handshake(gateway.context(tls12=True, ciphers=cipher)) as sock:
        assert sock.version() == "TLSv1.2"
        assert sock.cipher()[0] == cipher  # type: ignore[index]


def test_rsa_cipher_suites_are_refused(gateway: Gateway) -> None:
    for rsa_only in ("ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256", "AES256-GCM-SHA384:AES128-GCM-SHA256"):
        with pytest.raises(ssl.SSLError):
            gateway.handshake(gateway.context(tls12=True, ciphers=rsa_only)).close()


def test_tls13_is_offered(gateway: Gateway) -> None:
    with gateway.handshake(gateway.context()) as sock:
        assert sock.version() == "TLSv1.3"


def test_tls12_session_id_resumes_without_tickets(gateway: Gateway) -> None:
    ctx = gateway.context(tls12=True)
    with gateway.handshake(ctx) as first:
        session = first.session
        assert session is not None and not first.session_reused
    assert not session.has_ticket  # ssl_session_tickets off
    assert session.id  # a session id, for the shared session cache
    with gateway.handshake(ctx, session=session) as second:
        assert second.session_reused


# --- 7. the default worker user ------------------------------------------------------------------


class BundleHandler(BaseHTTPRequestHandler):
    """GET /<tenant>/x509/ca of a stand-in PKI: a CA bundle, for rendering only."""

    bundle = b""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == f"/{TENANT}/x509/ca" else 404)
        self.send_header("Content-Type", "application/x-pem-file")
        self.send_header("Content-Length", str(len(self.bundle)))
        self.end_headers()
        self.wfile.write(self.bundle)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


def test_default_worker_user_passes_nginx_t_as_root(tmp_path: Path) -> None:
    """Rendered without --user and checked by `nginx -t` as root, the master's case: NGINX looks the
    workers' user and group up then (Debian has no group nobody). Only `nginx -t`: nothing starts."""
    nginx = require_nginx()
    if os.geteuid() != 0:
        pytest.skip("NGINX ignores the user directive unless it starts as root")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Root CA")])
    now = datetime.datetime.now(datetime.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    handler = type("Handler", (BundleHandler,), {"bundle": ca.public_bytes(serialization.Encoding.PEM)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    try:
        out = tmp_path / "gateway"
        render = subprocess.run(
            [
                sys.executable,
                "-m",
                "scripts.gateway",
                "render",
                "--tenant",
                TENANT,
                "--pki-url",
                f"http://127.0.0.1:{server.server_address[1]}",
                "--out",
                str(out),
                "--listen",
                f"127.0.0.1:{free_port()}",
                "--self-signed-server-cert",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if k != "SEACAT_GATEWAY_CREDENTIAL"},
        )
    finally:
        server.shutdown()
        server.server_close()
    assert render.returncode == 0, render.stdout + render.stderr
    conf = out / "nginx.conf"
    assert [line for line in conf.read_text().splitlines() if line.startswith("user ")][0].startswith("user nobody")
    check = subprocess.run(
        [nginx, "-e", "stderr", "-t", "-p", str(out), "-c", str(conf)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stderr
    pid = out / "nginx.pid"
    assert not pid.exists() or not pid.read_text().strip()  # `nginx -t` leaves it empty: nothing started


# --- 8. a CA rotation drill ------------------------------------------------------------------------

ROTATION_TENANT = "gateway-rotation"


def _ski(cert: x509.Certificate) -> bytes:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def _aki(cert: x509.Certificate) -> bytes | None:
    return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier


def test_ca_rotation_drill(pki: Stack, tmp_path: Path) -> None:
    """Rotate a tenant's CA behind real NGINX: an old client passes, a new one chains to the new CA,
    the old one renews onto it outside its window, the old CA is retired (refused, then forced) and
    its certificate refused, the bundle rendered again lacks it; then the new CA is revoked."""
    require_nginx()
    auth = {"Authorization": f"Bearer {pki.token}", "Content-Type": "application/json"}
    old_ca_id = setup_tenant(pki, ROTATION_TENANT, new=True).split(":", 1)[1]

    def gateway_for(name: str) -> Gateway:
        return start_gateway(pki, ROTATION_TENANT, tmp_path / name, upstream)

    def device_cert(state: Path) -> x509.Certificate:
        return x509.load_der_x509_certificate((state / "seacat_cert.der").read_bytes())

    upstream = start_upstream()
    running: list[Gateway] = []
    try:
        running.append(gateway_for("before"))
        before = running[-1]
        old = tmp_path / "old-device"
        enroll(f"https://127.0.0.1:{before.port}/seacat", before.server_cert, old)
        assert before.request("/protected", device=old)[0] == 200
        kept = tmp_path / "old-certificate"  # the old certificate, kept to present after the renewal
        shutil.copytree(old, kept)

        status, _, body = http("POST", f"{pki.url}/{ROTATION_TENANT}/x509/ca/rotate", REFERENCE_SPEC.encode(), auth)
        assert status == 201, body
        new_ca = x509.load_pem_x509_certificate(json.loads(body)["certificate"].encode())
        stop_process(before.process)
        running.append(gateway_for("rotated"))  # rendered again: the bundle holds both
        gateway = running[-1]
        assert len(x509.load_pem_x509_certificates((gateway.out / "seacat_ca.pem").read_bytes())) == 2
        assert gateway.request("/protected", device=old)[0] == 200  # the old client passes

        fresh = tmp_path / "new-device"
        enroll(f"https://127.0.0.1:{gateway.port}/seacat", gateway.server_cert, fresh)
        assert _aki(device_cert(fresh)) == _ski(new_ca)  # AKI = the new CA's SKI
        assert gateway.request("/protected", device=fresh)[0] == 200

        # the old client's next enrolment, far outside its renewal window: a certificate of the new CA
        enroll(f"https://127.0.0.1:{gateway.port}/seacat", gateway.server_cert, old, "--force")
        renewed = device_cert(old)
        assert renewed.serial_number != device_cert(kept).serial_number
        assert _aki(renewed) == _ski(new_ca)
        assert gateway.request("/protected", device=old)[0] == 200

        retire = f"{pki.url}/{ROTATION_TENANT}/x509/ca/{old_ca_id}/retire"
        status, _, body = http("PUT", retire, b"{}", auth)
        assert status == 409 and "still covers 1 unexpired, unrevoked client certificate" in json.loads(body)["message"]
        assert gateway.request("/protected", device=kept)[0] == 200  # refused retirement: nothing changed
        status, _, body = http("PUT", retire, b'{"force": true}', auth)
        assert status == 200 and json.loads(body)["keyDeletionScheduled"] is True, body
        status, elapsed = wait_for_status(gateway, kept, 403, limit=AUTH_CACHE_SECONDS + 6)
        assert status == 403, f"the old certificate still gets {status} {elapsed:.1f} s after the retirement"
        assert gateway.request("/protected", device=old)[0] == 200

        stop_process(gateway.process)
        running.append(gateway_for("retired"))  # rendered again: the old CA is gone from the bundle
        gateway = running[-1]
        assert x509.load_pem_x509_certificates((gateway.out / "seacat_ca.pem").read_bytes()) == [new_ca]
        assert gateway.request("/protected", device=kept)[0] == 400  # NGINX itself refuses it now
        assert gateway.request("/protected", device=fresh)[0] == 200

        # a compromised CA: everything it issued is refused within the PKI's windows
        revoke = f"{pki.url}/{ROTATION_TENANT}/x509/ca/{new_ca_id(new_ca)}/revoke"
        status, _, body = http("PUT", revoke, b"{}", auth)
        assert status == 200, body
        for device in (fresh, old):
            status, elapsed = wait_for_status(gateway, device, 403, limit=AUTH_CACHE_SECONDS + 6)
            assert status == 403, f"{device.name} still gets {status} {elapsed:.1f} s after the CA's revocation"
    finally:
        for gateway in running:
            stop_process(gateway.process)
        stop_upstream(upstream)


def new_ca_id(cert: x509.Certificate) -> str:
    return hashlib.sha384(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
