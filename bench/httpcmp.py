"""Side by side over HTTP on this machine: CFSSL issuing a P-256 client certificate from a PKCS#10
CSR (``POST /api/v1/cfssl/sign``) and our enrolment through `make run`'s stack (`chalice local` in
front of moto in server mode, which journals every write to disk).

Whole HTTP paths, not handlers: the same small client (http.client, a new connection per request,
``Connection: close``), the same concurrency, the same bounds. Both servers on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.common import HOST, ROOT, free_port, say

THREADS = 4
REQUESTS = 1000
SECONDS = 15.0
WARMUP = 8
READY_TIMEOUT = 60.0

Request = tuple[str, str, bytes, dict[str, str]]  # method, path, body, headers


def drive(port: int, requests: list[Request], ok: Callable[[int, bytes], bool]) -> dict[str, Any]:
    """Send ``requests`` from THREADS threads, a new connection each, until done or SECONDS pass."""
    queue = list(reversed(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []
    deadline = time.perf_counter() + SECONDS

    def worker() -> None:
        while time.perf_counter() < deadline:
            with lock:
                if not queue:
                    return
                method, path, body, headers = queue.pop()
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection(HOST, port, timeout=30)
                conn.request(method, path, body=body, headers={**headers, "Connection": "close"})
                response = conn.getresponse()
                data = response.read()
                conn.close()
                good = ok(response.status, data)
            except OSError as exc:
                good, data = False, repr(exc).encode()
                response = None
            took = time.perf_counter() - started
            with lock:
                if good:
                    latencies.append(took)
                else:
                    failures.append(f"{getattr(response, 'status', 'no answer')}: {data[:200]!r}")

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS + 60)
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1) if latencies else None

    return {
        "per_s": round(len(latencies) / elapsed, 1),
        "ok": len(latencies),
        "failed": len(failures),
        "first_failure": failures[0] if failures else None,
        "seconds": round(elapsed, 2),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
    }


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    import socket

    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode})")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {HOST}:{port} within {READY_TIMEOUT:.0f} s")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop a process group this harness started (and only that one)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass


# --- CFSSL ---------------------------------------------------------------------------------------------


def csr_pem(key: ec.EllipticCurvePrivateKey, cn: str) -> str:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def cfssl(workdir: Path) -> dict[str, Any]:
    binary = shutil.which("cfssl")
    if binary is None:
        return {"per_s": None, "reason": "cfssl is not installed (Debian: apt-get install golang-cfssl)"}
    version = (
        subprocess.run([binary, "version"], capture_output=True, text=True, timeout=30).stdout.split("\n")[0].strip()
    )
    (workdir / "ca-csr.json").write_text(
        json.dumps({"CN": "Bench CA", "key": {"algo": "ecdsa", "size": 256}, "names": [{"O": "Bench"}]})
    )
    profile = {"expiry": "8760h", "usages": ["digital signature", "client auth"]}
    (workdir / "config.json").write_text(json.dumps({"signing": {"default": profile, "profiles": {"client": profile}}}))
    made = subprocess.run(
        [binary, "genkey", "-initca", "ca-csr.json"], cwd=workdir, capture_output=True, timeout=60, check=True
    )
    ca = json.loads(made.stdout)
    (workdir / "ca.pem").write_text(ca["cert"])
    (workdir / "ca-key.pem").write_text(ca["key"])
    os.chmod(workdir / "ca-key.pem", 0o600)
    port = free_port()
    log = (workdir / "cfssl.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            "serve",
            "-address",
            HOST,
            "-port",
            str(port),
            "-ca",
            "ca.pem",
            "-ca-key",
            "ca-key.pem",
            "-config",
            "config.json",
            "-loglevel",
            "3",
        ],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_port(port, proc, "cfssl serve")

        def sign(n: int) -> list[Request]:
            return [
                (
                    "POST",
                    "/api/v1/cfssl/sign",
                    json.dumps(
                        {
                            "certificate_request": csr_pem(ec.generate_private_key(ec.SECP256R1()), f"device-{i}"),
                            "profile": "client",
                        }
                    ).encode(),
                    {"Content-Type": "application/json"},
                )
                for i in range(n)
            ]

        def ok(status: int, body: bytes) -> bool:
            return status == 200 and b'"success":true' in body

        drive(port, sign(WARMUP), ok)
        result = drive(port, sign(REQUESTS), ok)
        result["version"] = version
        result["what"] = (
            "POST /api/v1/cfssl/sign, PKCS#10 P-256 CSR, profile client (digitalSignature, clientAuth), P-256 CA"
        )
        return result
    finally:
        _stop(proc)
        log.close()


# --- ours: make run's stack ----------------------------------------------------------------------------

TOKEN = "sct_00000000000000bf_bench-http-operator-token-0123456789"


def ours(workdir: Path) -> dict[str, Any]:
    from bench.inproc import CA_SPEC
    from seacat_client.cr import build_cr

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SEACAT_"))}
    env.update(
        {
            "PORT": str(port),
            "SEACAT_ADMIN_TOKEN": TOKEN,
            "PYTHONUNBUFFERED": "1",
            "SEACAT_DATA_DIR": str(workdir / "seacat-local"),
        }
    )
    log_path = workdir / "stack.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts.local_run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while b"is running on" not in log_path.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the local stack did not start:\n" + log_path.read_text()[-2000:])
            time.sleep(0.2)
        admin = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        setup = drive(port, [("PUT", "/tenants/bench", b"{}", admin)], lambda s, b: s == 201)
        setup2 = drive(
            port, [("PUT", "/bench/x509/self-signed", json.dumps(CA_SPEC).encode(), admin)], lambda s, b: s == 201
        )
        if setup["ok"] != 1 or setup2["ok"] != 1:
            raise RuntimeError(f"could not create the tenant: {setup['first_failure'] or setup2['first_failure']}")

        def enrol(n: int) -> list[Request]:
            return [
                (
                    "PUT",
                    "/bench/seacat/enroll",
                    build_cr(ec.generate_private_key(ec.SECP256R1()), application="bench"),
                    {"Content-Type": "application/octet-stream"},
                )
                for _ in range(n)
            ]

        def ok(status: int, body: bytes) -> bool:
            return status == 200 and body[:1] == b"\x30"

        drive(port, enrol(WARMUP), ok)
        result = drive(port, enrol(REQUESTS), ok)
        result["what"] = (
            "PUT /{tenant}/seacat/enroll, SeaCat CR, through `chalice local` (one process) and moto "
            "in server mode over HTTP with its write journal (fsync per write)"
        )
        return result
    finally:
        _stop(proc, signal.SIGINT)  # what Ctrl-C sends: make run stops its children itself
        log.close()


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="seacat-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "cfssl").mkdir()
        (workdir / "ours").mkdir()
        say("  CFSSL over HTTP ...")
        try:
            theirs = cfssl(workdir / "cfssl")
        except Exception as exc:  # record why and go on
            theirs = {"per_s": None, "reason": f"{type(exc).__name__}: {exc}"[:500]}
        say("  ours over HTTP (make run's stack) ...")
        try:
            mine = ours(workdir / "ours")
        except Exception as exc:
            mine = {"per_s": None, "reason": f"{type(exc).__name__}: {exc}"[:500]}
    return {
        "cfssl": theirs,
        "ours": mine,
        "client": f"http.client, a new connection per request (Connection: close), {THREADS} threads, "
        f"at most {REQUESTS} requests or {SECONDS:.0f} s each, after {WARMUP} warm-up requests",
        "note": "whole HTTP paths on one machine, not handlers: CFSSL is one Go process signing from a local "
        "key; ours is chalice local (Python, a dev server) calling the AWS emulator over HTTP",
    }
