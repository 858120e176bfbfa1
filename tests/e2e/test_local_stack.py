"""End to end through `make run`'s stack: granian workers in front of the app on SQLite and the local
key store, real HTTP on 127.0.0.1. Also how it stops (Ctrl-C, SIGTERM, kill -9: no worker is left
behind) and 256 clients at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from seacat_client.cr import build_cr
from tests.conftest import REFERENCE_SPEC
from tests.e2e.conftest import EMBEDDED, EMULATOR, ROOT, Stack, http, setup_tenant, start_stack


def test_reference_curl_and_openssl(stack: Stack, tmp_path: Path) -> None:
    auth = ["-H", f"Authorization: Bearer {stack.token}"]
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "PUT",
            *auth,
            "-H",
            "Content-Type: application/json",
            f"{stack.url}/tenants/TENANT",
            "-d",
            "{}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["tenant"] == "TENANT"
    # the reference documentation's call, byte for byte (plus the token)
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "PUT",
            f"{stack.url}/TENANT/x509/self-signed",
            *auth,
            "-H",
            "Content-Type: application/json",
            "-d",
            REFERENCE_SPEC,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    answer = json.loads(out.stdout)
    assert answer["ca_cert"].startswith("TENANT:") and len(answer["ca_cert"]) == len("TENANT:") + 96
    pem = tmp_path / "ca.pem"
    pem.write_text(answer["certificate"])
    text = subprocess.run(
        ["openssl", "x509", "-in", str(pem), "-noout", "-text"], capture_output=True, text=True, check=True
    ).stdout
    assert "Serial Number: 1 (0x1)" in text
    assert "Signature Algorithm: ecdsa-with-SHA256" in text
    assert "Issuer: O = My Org, CN = Root CA" in text and "Subject: O = My Org, CN = Root CA" in text
    assert "ASN1 OID: prime256v1" in text
    assert "X509v3 Basic Constraints: critical" in text and "CA:TRUE, pathlen:0" in text
    assert "Certificate Sign, CRL Sign" in text
    assert "X509v3 Subject Key Identifier" in text
    # the public bundle
    out = subprocess.run(["curl", "-sS", f"{stack.url}/TENANT/x509/ca"], capture_output=True, check=True).stdout
    assert x509.load_pem_x509_certificates(out)[0] == x509.load_pem_x509_certificate(pem.read_bytes())


def test_python_client_enrols_and_openssl_verifies(stack: Stack, tmp_path: Path) -> None:
    setup_tenant(stack, "clients")
    state = tmp_path / "device"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "seacat_client",
            "enroll",
            "--api-url",
            f"{stack.url}/clients/seacat/",
            "--dir",
            str(state),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    der = (state / "seacat_cert.der").read_bytes()
    cert = x509.load_der_x509_certificate(der)
    status, _, bundle = http("GET", f"{stack.url}/clients/x509/ca")
    (tmp_path / "ca.pem").write_bytes(bundle)
    subprocess.run(
        [
            "openssl",
            "x509",
            "-inform",
            "DER",
            "-in",
            str(state / "seacat_cert.der"),
            "-out",
            str(tmp_path / "leaf.pem"),
        ],
        check=True,
    )
    verify = subprocess.run(
        ["openssl", "verify", "-purpose", "sslclient", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "leaf.pem")],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    identity = cert.subject.rfc4514_string().removeprefix("CN=")
    assert identity in run.stdout
    # the peer lookup the Android client makes
    status, headers, body = http("GET", f"{stack.url}/clients/seacat/get/{identity}")
    assert status == 200 and body == der
    # a second run is outside the renewal window: no new request, same certificate
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "seacat_client",
            "enroll",
            "--api-url",
            f"{stack.url}/clients/seacat",
            "--dir",
            str(state),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0 and (state / "seacat_cert.der").read_bytes() == der


@pytest.mark.parametrize("accept", [None, "*/*", "application/octet-stream"])
def test_enroll_answers_raw_der_whatever_the_accept(stack: Stack, accept: str | None) -> None:
    setup_tenant(stack, "accepts")
    headers = {"Content-Type": "application/octet-stream"}
    if accept:
        headers["Accept"] = accept
    # urllib adds no Accept header of its own
    status, response_headers, body = http(
        "PUT",
        f"{stack.url}/accepts/seacat/enroll",
        build_cr(ec.generate_private_key(ec.SECP256R1()), application="a"),
        headers,
    )
    assert status == 200, body
    assert response_headers["Content-Type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(body).version == x509.Version.v3


def test_parallel_enrolments(stack: Stack) -> None:
    setup_tenant(stack, "parallel")
    url = f"{stack.url}/parallel/seacat/enroll"
    headers = {"Content-Type": "application/octet-stream"}

    # distinct keys at once: each gets its own certificate, serials unique
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(16)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda k: http("PUT", url, build_cr(k, application="p"), headers), keys))
    assert [r[0] for r in results] == [200] * 16
    certs = [x509.load_der_x509_certificate(r[2]) for r in results]
    assert len({c.serial_number for c in certs}) == 16
    assert all(c.public_key() == k.public_key() for c, k in zip(certs, keys, strict=False))

    # the same CR many times at once: one certificate
    key = ec.generate_private_key(ec.SECP256R1())
    cr = build_cr(key, application="dup")
    with ThreadPoolExecutor(max_workers=8) as pool:
        same = list(pool.map(lambda _: http("PUT", url, cr, headers), range(8)))
    statuses = [s for s, _, _ in same]
    bodies = {b for s, _, b in same if s == 200}
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 503}, statuses
    assert len(bodies) == 1
    identity = x509.load_der_x509_certificate(next(iter(bodies))).subject.rfc4514_string().removeprefix("CN=")
    auth = {"Authorization": f"Bearer {stack.token}"}
    status, _, listed = http("GET", f"{stack.url}/parallel/seacat/identity/{identity}/certificates", headers=auth)
    assert status == 200 and json.loads(listed)["count"] == 1


def group(pgid: int) -> set[int]:
    """The live processes of a process group (zombies apart)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def wait_gone(pgid: int, seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while (left := group(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.mark.parametrize(
    ("module", "how"),
    [(EMBEDDED, "ctrl-c"), (EMBEDDED, "sigint"), (EMBEDDED, "sigterm"), (EMULATOR, "sigint")],
)
def test_ctrl_c_and_sigterm_stop_everything(tmp_path: Path, module: str, how: str) -> None:
    other = start_stack(tmp_path, token="sct_00000000000000e3_second-stack-operator-token", module=module)
    assert "Admin token:   sct_00000000000000e3_second-stack-operator-token" in other.log.read_text()
    pgid = other.process.pid
    if module == EMBEDDED:
        started = group(pgid)
        assert len(started) >= 2, started  # the server and its workers
    if how == "ctrl-c":  # what a terminal does: SIGINT to the whole foreground group
        os.killpg(pgid, signal.SIGINT)
    else:
        other.process.send_signal(signal.SIGINT if how == "sigint" else signal.SIGTERM)
    assert other.process.wait(timeout=30) == 0
    assert not wait_gone(pgid, 10), "a worker outlived the server"
    log = other.log.read_text()
    assert "seacat: stopped" in log
    if module == EMBEDDED:
        assert "refused to gracefully stop" not in log  # no worker had to be killed
        assert other.data_dir is not None
        # Every worker closed its connections: the last one out checkpointed and removed the log.
        assert not (other.data_dir / "seacat.db-wal").exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{other.url}/health", timeout=2)


def test_kill_9_of_the_server_alone_leaves_no_worker(tmp_path: Path) -> None:
    other = start_stack(tmp_path, token="sct_00000000000000e4_third-stack-operator-token")
    pgid = other.process.pid
    workers = group(pgid) - {pgid}
    assert workers
    other.process.kill()  # the server only; its workers see their parent gone and leave
    other.process.wait(timeout=15)
    assert not wait_gone(pgid, 15), "workers outlived a killed server"


def test_a_worker_killed_is_replaced_and_the_service_goes_on(tmp_path: Path) -> None:
    other = start_stack(tmp_path, token="sct_00000000000000e7_respawn-stack-operator-token")
    try:
        pgid = other.process.pid
        workers = group(pgid) - {pgid}
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)  # as the kernel's out-of-memory killer would
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = group(pgid) - {pgid}
            if victim not in now and len(now) >= len(workers):
                break
            time.sleep(0.05)  # polling for the replacement, not waiting in its place
        replaced = group(pgid) - {pgid}
        assert victim not in replaced and len(replaced) >= len(workers), (workers, replaced)
        assert other.process.poll() is None
        for _ in range(8):  # each on a new connection: whichever worker takes it answers
            status, _, _ = http("GET", f"{other.url}/health", close=True)
            assert status == 200
    finally:
        os.killpg(other.process.pid, signal.SIGTERM)
        other.process.wait(timeout=30)


CLIENTS = 256


def test_256_clients_enrolling_at_once_are_all_answered_and_stored(stack: Stack) -> None:
    """One round of 256 parallel connections, each enrolling a new key: every request answered 200,
    every certificate stored and served. Bounded: one request per client, 30 s each, 180 s in all."""
    setup_tenant(stack, "crowd")
    url = f"{stack.url}/crowd/seacat/enroll"
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(CLIENTS)]
    crs = [build_cr(k, application="crowd") for k in keys]
    results: list[tuple[int, bytes] | str | None] = [None] * CLIENTS
    barrier = threading.Barrier(CLIENTS, timeout=60)

    def client(n: int) -> None:
        try:
            barrier.wait()
            status, _, body = http("PUT", url, crs[n], {"Content-Type": "application/octet-stream"}, close=True)
            results[n] = (status, body)
        except Exception as exc:  # a reset, a timeout: recorded, the test says which
            results[n] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    deadline = started + 180
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "clients still waiting after 180 s"
    failures = [r for r in results if not (isinstance(r, tuple) and r[0] == 200)]
    assert not failures, f"{len(failures)} of {CLIENTS} not answered 200: {failures[:5]}"
    ders = [r[1] for r in results if isinstance(r, tuple)]
    certs = [x509.load_der_x509_certificate(der) for der in ders]
    assert len({c.serial_number for c in certs}) == CLIENTS
    assert all(c.public_key() == k.public_key() for c, k in zip(certs, keys, strict=True))

    def served(cert: x509.Certificate) -> bytes:
        identity = cert.subject.rfc4514_string().removeprefix("CN=")
        status, _, body = http("GET", f"{stack.url}/crowd/seacat/get/{identity}")
        assert status == 200, identity
        return body

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert list(pool.map(served, certs, timeout=120)) == ders


def test_sigterm_lets_a_request_in_flight_finish(tmp_path: Path) -> None:
    """An enrolment held in its approval webhook when SIGTERM arrives is answered 200 and stored; the
    server then exits 0. The webhook answers only once the stop has begun (no sleep stands in)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    reached, release = threading.Event(), threading.Event()

    class Webhook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            reached.set()
            release.wait(20)
            body = b'{"result": "OK"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    hook.daemon_threads = True
    threading.Thread(target=hook.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    other = start_stack(tmp_path, token="sct_00000000000000e6_inflight-stack-operator-token")
    try:
        approve = f"http://127.0.0.1:{hook.server_address[1]}/approve"
        # The longest webhook wait a tenant may set: the hold below spans the stop, which may take up to
        # the server's 10 s limit (a worker still booting used to make it), beyond the 5 s default.
        config = json.dumps({"approve": approve, "webhookTimeout": 25})
        setup_tenant(other, "inflight", config)
        key = ec.generate_private_key(ec.SECP256R1())
        answer: list[tuple[int, bytes]] = []

        def enrol() -> None:
            status, _, body = http(
                "PUT",
                f"{other.url}/inflight/seacat/enroll",
                build_cr(key, application="inflight"),
                {"Content-Type": "application/octet-stream"},
            )
            answer.append((status, body))

        client = threading.Thread(target=enrol, daemon=True)
        client.start()
        assert reached.wait(30), "the enrolment never reached its webhook"
        other.process.send_signal(signal.SIGTERM)
        # The stop has begun once the server refuses new connections; then the webhook answers.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{other.url}/health", timeout=1)
            except OSError:
                break
            time.sleep(0.02)  # polling for the refusal, not waiting in its place
        release.set()
        client.join(30)
        assert answer and answer[0][0] == 200, answer
        assert x509.load_der_x509_certificate(answer[0][1]).public_key() == key.public_key()
        assert other.process.wait(timeout=30) == 0
    finally:
        release.set()
        hook.shutdown()
        if other.process.poll() is None:
            os.killpg(other.process.pid, signal.SIGKILL)
            other.process.wait(timeout=15)
    again = start_stack(tmp_path, token="sct_00000000000000e6_inflight-stack-operator-token", data_dir=other.data_dir)
    try:
        identity = x509.load_der_x509_certificate(answer[0][1]).subject.rfc4514_string().removeprefix("CN=")
        status, _, served = http("GET", f"{again.url}/inflight/seacat/get/{identity}")
        assert status == 200 and served == answer[0][1]  # stored before it was answered
    finally:
        os.killpg(again.process.pid, signal.SIGTERM)
        again.process.wait(timeout=30)
