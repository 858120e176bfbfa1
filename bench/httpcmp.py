"""`make bench`'s HTTP phase: `make run` (granian workers on SQLite and the local key store, started
as `python -m embedded.run`) over real HTTP on 127.0.0.1, beside CFSSL.

1. Side by side: CFSSL signing a PKCS#10 P-256 CSR (``POST /api/v1/cfssl/sign``, `cfssl serve` with a
   P-256 CA) and our enrolment (``PUT /{tenant}/seacat/enroll``, a SeaCat CR). Both servers run at
   once; the same client drives them in turns (ROUNDS rounds, the order swapped every round), each
   turn at most REQUESTS requests or SECONDS s, with a new connection per request (``Connection:
   close``, as a device enrolling) and then with keep-alive connections. Rates and p50/p95 are the
   medians of the rounds; the ratio ours/CFSSL is taken per round (both turns of a round see about the
   same load), its median judged.
2. CROWD clients at once, one enrolment each over its own connection: every one answered, every
   certificate in the database.
3. nginx_authenticate, NGINX's own cache aside (every request reaches the service): AUTH_POOL distinct
   certificates the service issued above, first each one once (first sight in a worker), then cycled
   with the service's verified-certificate cache warm, as deployed; a new connection per request, as
   the reference NGINX configuration asks (no upstream keep-alive), and with keep-alive.
4. kill -9 of the server and its workers during parallel enrolments, then a start on the same
   directory: every certificate a client received is stored, the database intact.
5. The ceiling: CEILING enrolments made by the service's own enrolment use case with nothing in front
   of it (bench/fill.py: in-process, one process per CPU as `make run` has workers, on the same store
   and key store, CRs made before the clock): what `make run` could reach if HTTP, the server and the
   client cost nothing. Its ratio to CFSSL bounds the HTTP ratio of 1.
6. The directory filled to RESTART_FILL client certificates (bench/fill.py again), then stop and
   start RESTARTS times: the time from starting `python -m embedded.run` to ``GET /health`` 200.

The client is small and the same for every figure: http.client from THREADS threads. Every loop is
bounded in count and time; every port is a free one; the data directory is a temporary one.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.common import HOST, ROOT, free_port, load_average, say

THREADS = 8
REQUESTS = 1500
SECONDS = 8.0
ROUNDS = 3
WARMUP = 32
READY_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0

CROWD = 256
CROWD_SECONDS = 180.0

AUTH_POOL = 1000
AUTH_REQUESTS = 6000
AUTH_SECONDS = 6.0

KILL_CLIENTS = 16
KILL_AFTER = 300  # certificates received before the kill, or KILL_SECONDS
KILL_SECONDS = 30.0

CEILING = 3000
CEILING_SECONDS = 30.0

RESTART_FILL = 10_000
FILL_SECONDS = 300.0
RESTARTS = 3

BOUNDS = (
    f"enrol: min({REQUESTS} requests, {SECONDS} s) per turn, {ROUNDS} rounds per connection mode; "
    f"crowd: {CROWD} clients, {CROWD_SECONDS} s; nginx_authenticate: {AUTH_POOL} certificates, "
    f"min({AUTH_REQUESTS}, {AUTH_SECONDS} s) per run, {ROUNDS} runs; kill -9: {KILL_CLIENTS} clients, after "
    f"{KILL_AFTER} certificates or {KILL_SECONDS} s; ceiling: {CEILING} or {CEILING_SECONDS} s; fill: {RESTART_FILL} "
    f"or {FILL_SECONDS} s; {RESTARTS} restarts"
)

TENANT = "bench"
TOKEN = "sct_00000000000000bf_bench-http-operator-token-0123456789"
OCTET = {"Content-Type": "application/octet-stream"}
AUTH_HEADERS = {"Content-Type": "text/plain", "X-SSL-Client-Verify": "SUCCESS", "X-Forwarded-Request": "GET / HTTP/1.1"}

Request = tuple[str, str, bytes, dict[str, str]]  # method, path, body, headers


# --- the client ------------------------------------------------------------------------------------


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) of the live processes of a process group: a server and its workers.
    Load-independent, unlike a rate on a shared machine: what each request cost the server."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # pgrp; then utime and stime (fields 14 and 15 of proc(5))
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


def _pct(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    return round(sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))] * 1000, 1)


def drive(
    port: int,
    requests: list[Request],
    ok: Callable[[int, bytes], bool],
    *,
    keep_alive: bool = False,
    threads: int = THREADS,
    seconds: float = SECONDS,
    keep_bodies: bool = False,
    server_pgid: int | None = None,
) -> dict[str, Any]:
    """Send ``requests`` from ``threads`` threads until done or ``seconds`` pass. Without ``keep_alive``
    a new connection per request (``Connection: close``); with it one connection per thread, opened
    again only if the server closes it. ``keep_bodies``: the good answers' bodies under ``_bodies``.
    ``server_pgid``: also the CPU time the server's processes and this client spent per good answer."""
    queue = list(reversed(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []
    bodies: list[bytes] = []
    connections = [0]
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        conn: http.client.HTTPConnection | None = None
        try:
            while time.perf_counter() < deadline:
                with lock:
                    if not queue:
                        return
                    method, path, body, headers = queue.pop()
                if not keep_alive:
                    headers = {**headers, "Connection": "close"}
                started = time.perf_counter()
                status: int | str = "no answer"
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
                        with lock:
                            connections[0] += 1
                    conn.request(method, path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    status = response.status
                    if response.will_close or not keep_alive:
                        conn.close()
                        conn = None
                    good = ok(response.status, data)
                except (OSError, http.client.HTTPException) as exc:
                    good, data = False, repr(exc).encode()
                    if conn is not None:
                        conn.close()
                        conn = None
                took = time.perf_counter() - started
                with lock:
                    if good:
                        latencies.append(took)
                        if keep_bodies:
                            bodies.append(data)
                    else:
                        failures.append(f"{status}: {data[:200]!r}")
        finally:
            if conn is not None:
                conn.close()

    server_cpu = group_cpu_seconds(server_pgid) if server_pgid else 0.0
    client_cpu = time.process_time()
    started = time.perf_counter()
    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(seconds + REQUEST_TIMEOUT + 10)
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu
    if server_pgid:
        server_cpu = group_cpu_seconds(server_pgid) - server_cpu
    latencies.sort()
    result: dict[str, Any] = {
        "per_s": round(len(latencies) / elapsed, 1),
        "ok": len(latencies),
        "failed": len(failures),
        "first_failure": failures[0] if failures else None,
        "connections": connections[0],
        "seconds": round(elapsed, 2),
        "p50_ms": _pct(latencies, 0.50),
        "p95_ms": _pct(latencies, 0.95),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
    }
    if server_pgid and latencies:
        result["server_cpu_ms"] = round(server_cpu * 1000 / len(latencies), 3)
        result["client_cpu_ms"] = round(client_cpu * 1000 / len(latencies), 3)
    if keep_bodies:
        result["_bodies"] = bodies
    return result


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of the runs' rates and percentiles, and the runs themselves."""

    def med(key: str) -> float | None:
        values = [r[key] for r in runs if r.get(key) is not None]
        return round(statistics.median(values), 3 if key.endswith("cpu_ms") else 1) if values else None

    return {
        "per_s": med("per_s"),
        "p50_ms": med("p50_ms"),
        "p95_ms": med("p95_ms"),
        "server_cpu_ms": med("server_cpu_ms"),
        "client_cpu_ms": med("client_cpu_ms"),
        "ok": sum(r["ok"] for r in runs),
        "failed": sum(r["failed"] for r in runs),
        "first_failure": next((r["first_failure"] for r in runs if r["first_failure"]), None),
        "runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs],
    }


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int | None:
    """Stop a process group this harness started (and only that one)."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
    return proc.returncode


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


# --- CFSSL ---------------------------------------------------------------------------------------------


def debian_binary(binary: str, package: str) -> tuple[str | None, str]:
    """``binary`` on PATH; installed from Debian's ``package`` when missing and running as root with
    apt-get (once more after an ``apt-get update`` if the first install fails). Returns the path,
    or None and why."""
    found = shutil.which(binary)
    if found:
        return found, ""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, (
            f"{binary} is not installed and this is not root with apt-get: install it first "
            f"(Debian/Ubuntu: sudo apt-get install -y {package}), then run make bench again"
        )
    say(f"  {binary} is missing: apt-get install -y {package} ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", package]
    done = subprocess.run(install, capture_output=True, text=True, timeout=600, env=env)
    if done.returncode != 0:  # perhaps no package lists yet: once more after an update
        subprocess.run(["apt-get", "update"], capture_output=True, text=True, timeout=600, env=env)
        done = subprocess.run(install, capture_output=True, text=True, timeout=600, env=env)
    found = shutil.which(binary)
    return found, "" if found else f"apt-get install {package} failed ({done.returncode}): {done.stderr[-500:]}"


def find_cfssl() -> str:
    """The cfssl binary (Debian's golang-cfssl, installed when missing), else RuntimeError saying why."""
    binary, why = debian_binary("cfssl", "golang-cfssl")
    if binary is None:
        raise RuntimeError(why)
    return binary


def csr_pem(key: ec.EllipticCurvePrivateKey, cn: str) -> str:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


@dataclass
class Cfssl:
    port: int
    version: str
    proc: subprocess.Popen[bytes]

    @staticmethod
    def requests(n: int) -> list[Request]:
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

    @staticmethod
    def ok(status: int, body: bytes) -> bool:
        return status == 200 and b'"success":true' in body


@contextmanager
def cfssl_server(workdir: Path) -> Iterator[Cfssl]:
    binary = find_cfssl()
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
    args = ["serve", "-address", HOST, "-port", str(port), "-ca", "ca.pem", "-ca-key", "ca-key.pem"]
    with (workdir / "cfssl.log").open("wb") as log:
        proc = subprocess.Popen(
            [binary, *args, "-config", "config.json", "-loglevel", "3"],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"cfssl serve exited ({proc.returncode})")
                try:
                    conn = http.client.HTTPConnection(HOST, port, timeout=2)
                    conn.request("GET", "/")
                    conn.getresponse().read()
                    conn.close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"cfssl serve did not answer within {READY_TIMEOUT:.0f} s") from None
                    time.sleep(0.05)
            yield Cfssl(port, version, proc)
        finally:
            _stop(proc)


# --- ours: make run ------------------------------------------------------------------------------------


class MakeRun:
    """`make run` (``python -m embedded.run``) on a data directory, on a free port each start."""

    def __init__(self, data: Path, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data = data
        self.env = env or {}
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    @property
    def pgid(self) -> int:
        assert self.proc is not None
        return self.proc.pid  # start_new_session: the server leads its own group, its workers in it

    @property
    def database(self) -> Path:
        return self.data / "seacat.db"

    def start(self) -> float:
        """Start it; the seconds from starting the process to ``GET /health`` 200."""
        self.port = free_port()
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SEACAT_", "PYTHON"))}
        env.update(
            {
                "PORT": str(self.port),
                "SEACAT_ADMIN_TOKEN": TOKEN,
                "PYTHONUNBUFFERED": "1",
                "SEACAT_DATA_DIR": str(self.data),
                **self.env,
            }
        )
        # The server's shape as make run takes it (SEACAT_WORKERS, SEACAT_THREADS), to compare shapes.
        env.update({k: v for k, v in os.environ.items() if k in ("SEACAT_WORKERS", "SEACAT_THREADS")})
        self.log = self.log_dir / f"make-run-{self.starts}.log"
        with self.log.open("wb") as log:
            started = time.perf_counter()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "embedded.run"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"make run exited ({self.proc.returncode}):\n{self.log.read_text()[-2000:]}")
            if healthy(self.port):
                return time.perf_counter() - started
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"make run did not answer /health within {READY_TIMEOUT:.0f} s")

    def stop(self) -> int | None:
        """SIGTERM: a graceful stop (requests in flight finish)."""
        assert self.proc is not None
        return _stop(self.proc)

    def kill(self) -> None:
        """kill -9 of the server and its workers (its process group)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=15)

    def call(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def create_tenant(self) -> None:
        from bench.inproc import CA_SPEC

        admin = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        status, body = self.call("PUT", f"/tenants/{TENANT}", b"{}", admin)
        if status != 201:
            raise RuntimeError(f"could not create the tenant: {status} {body[:200]!r}")
        status, body = self.call("PUT", f"/{TENANT}/x509/self-signed", json.dumps(CA_SPEC).encode(), admin)
        if status != 201:
            raise RuntimeError(f"could not create the CA: {status} {body[:200]!r}")

    def stored_certificates(self) -> set[bytes]:
        """Every client certificate of the tenant in the database (read-only, beside the server)."""
        conn = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10)
        try:
            rows = conn.execute("SELECT der FROM certificates WHERE tenant_id = ? AND kind = 'seacat'", (TENANT,))
            return {bytes(row[0]) for row in rows}
        finally:
            conn.close()

    def integrity(self) -> str:
        conn = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10)
        try:
            return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
        finally:
            conn.close()


def enrolments(n: int) -> list[Request]:
    from seacat_client.cr import build_cr

    return [
        (
            "PUT",
            f"/{TENANT}/seacat/enroll",
            build_cr(ec.generate_private_key(ec.SECP256R1()), application="bench"),
            OCTET,
        )
        for _ in range(n)
    ]


def enrolled(status: int, body: bytes) -> bool:
    return status == 200 and body[:1] == b"\x30"


# --- the phases ----------------------------------------------------------------------------------------


def side_by_side(ours: MakeRun, theirs: Cfssl | None) -> tuple[dict[str, Any], list[bytes]]:
    """Enrolment (ours) and signing (CFSSL) in turns, per connection mode; the DER certificates we issued."""
    issued: list[bytes] = []
    out: dict[str, Any] = {}
    for mode, keep_alive in (("close", False), ("keepalive", True)):
        drive(ours.port, enrolments(WARMUP), enrolled, keep_alive=keep_alive)
        if theirs is not None:
            drive(theirs.port, theirs.requests(WARMUP), theirs.ok, keep_alive=keep_alive)
        mine: list[dict[str, Any]] = []
        cfssl: list[dict[str, Any]] = []
        for round_ in range(ROUNDS):
            ours_inputs = enrolments(REQUESTS)
            their_inputs = theirs.requests(REQUESTS) if theirs is not None else []
            turns = ["ours", "cfssl"] if round_ % 2 == 0 else ["cfssl", "ours"]
            for turn in turns:
                if turn == "ours":
                    result = drive(
                        ours.port, ours_inputs, enrolled, keep_alive=keep_alive, keep_bodies=True, server_pgid=ours.pgid
                    )
                    issued.extend(result.pop("_bodies"))
                    mine.append(result)
                elif theirs is not None:
                    cfssl.append(
                        drive(theirs.port, their_inputs, theirs.ok, keep_alive=keep_alive, server_pgid=theirs.proc.pid)
                    )
            say(
                f"    {mode} round {round_ + 1}: ours {mine[-1]['per_s']}/s"
                + (f", CFSSL {cfssl[-1]['per_s']}/s" if cfssl else "")
            )
        paired = zip(mine, cfssl, strict=True) if cfssl else ()
        ratios = [round(m["per_s"] / c["per_s"], 3) for m, c in paired if c["per_s"]]
        out[mode] = {
            "ours": summarize(mine),
            "cfssl": summarize(cfssl) if cfssl else None,
            "ratio": round(statistics.median(ratios), 3) if ratios else None,
            "ratio_runs": ratios,
        }
    return out, issued


def crowd(ours: MakeRun) -> dict[str, Any]:
    """CROWD clients released at once, one new connection and one enrolment each."""
    requests = enrolments(CROWD)
    results: list[tuple[int, bytes, float] | str | None] = [None] * CROWD
    barrier = threading.Barrier(CROWD, timeout=60)

    def client(n: int) -> None:
        method, path, body, headers = requests[n]
        try:
            barrier.wait()
            started = time.perf_counter()
            status, data = ours.call(method, path, body, {**headers, "Connection": "close"})
            results[n] = (status, data, time.perf_counter() - started)
        except Exception as exc:  # a reset, a timeout: recorded
            results[n] = f"{type(exc).__name__}: {exc}"

    pool = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CROWD)]
    started = time.monotonic()
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=max(0.0, started + CROWD_SECONDS - time.monotonic()))
    elapsed = time.monotonic() - started
    answered = [r for r in results if isinstance(r, tuple) and enrolled(r[0], r[1])]
    failures = [
        r if isinstance(r, str) else f"status {r[0]}: {r[1][:200]!r}" if r else "no answer in time"
        for r in results
        if not (isinstance(r, tuple) and enrolled(r[0], r[1]))
    ]
    received = {r[1] for r in answered}
    stored = ours.stored_certificates()
    latencies = sorted(r[2] for r in answered)
    return {
        "clients": CROWD,
        "answered_200": len(answered),
        "failed": len(failures),
        "failures": failures[:5],
        "distinct_certificates": len(received),
        "stored": len(received & stored),
        "seconds": round(elapsed, 2),
        "p50_ms": _pct(latencies, 0.5),
        "p95_ms": _pct(latencies, 0.95),
        "max_ms": _pct(latencies, 1.0),
        "all_answered_and_stored": len(answered) == CROWD and len(received & stored) == CROWD,
    }


def authenticate(ours: MakeRun, issued: list[bytes]) -> dict[str, Any]:
    """nginx_authenticate over HTTP, AUTH_POOL distinct certificates; NGINX's auth cache aside."""
    pems = [x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM) for der in issued[:AUTH_POOL]]
    if len(pems) < AUTH_POOL:
        raise RuntimeError(f"only {len(pems)} certificates to authenticate with")
    path = f"/{TENANT}/seacat/nginx_authenticate"

    def requests(n: int) -> list[Request]:
        return [("PUT", path, pems[i % len(pems)], AUTH_HEADERS) for i in range(n)]

    def ok(status: int, body: bytes) -> bool:
        return status == 200

    first = drive(
        ours.port, requests(AUTH_POOL), ok, seconds=AUTH_SECONDS * 3, server_pgid=ours.pgid
    )  # each certificate's first sight
    # Each worker keeps its own verified-certificate cache: a few more passes so every worker has seen each one.
    drive(ours.port, requests(3 * AUTH_POOL), ok, keep_alive=True, seconds=AUTH_SECONDS * 3)
    out: dict[str, Any] = {"first_sight": {k: v for k, v in first.items() if not k.startswith("_")}}
    for mode, keep_alive in (("close", False), ("keepalive", True)):
        runs = [
            drive(
                ours.port,
                requests(AUTH_REQUESTS),
                ok,
                keep_alive=keep_alive,
                seconds=AUTH_SECONDS,
                server_pgid=ours.pgid,
            )
            for _ in range(ROUNDS)
        ]
        out[mode] = summarize(runs)
        say(f"    nginx_authenticate, {mode}: {[r['per_s'] for r in runs]}/s")
    out["certificates"] = len(pems)
    out["wrk"] = authenticate_wrk(ours, pems, path)
    return out


# wrk's Lua: the certificates in turn, with Connection: close (a new connection per request) or
# keep-alive; wrk counts the answers that are not 2xx/3xx itself (a run with any is not a rate).
_WRK_SCRIPT = """
local bodies, i = {}, 0
local f = assert(io.open(os.getenv("SEACAT_BENCH_PEMS"), "rb"))
local data = f:read("*a")
f:close()
for pem in string.gmatch(data, "(.-\\n)\\n") do bodies[#bodies + 1] = pem end
local headers = {["Content-Type"] = "text/plain", ["X-SSL-Client-Verify"] = "SUCCESS",
  ["X-Forwarded-Request"] = "GET / HTTP/1.1", ["Connection"] = os.getenv("SEACAT_BENCH_CONNECTION")}
local path = os.getenv("SEACAT_BENCH_PATH")
request = function()
  i = i + 1
  return wrk.format("PUT", path, headers, bodies[(i % #bodies) + 1])
end
"""


def _wrk_count(output: str, label: str) -> int:
    for line in output.splitlines():
        if label in line:
            return int(line.split()[0]) if label == "requests in" else int(line.split(":")[1].split()[0])
    return 0


def authenticate_wrk(ours: MakeRun, pems: list[bytes], path: str) -> dict[str, Any]:
    """nginx_authenticate driven by wrk (C, as NGINX is) instead of the Python client, which spends
    0.3-0.4 ms of CPU per request on this machine's two cores: the service's own capacity. 2 threads,
    8 connections, AUTH_SECONDS per run, ROUNDS runs per connection mode."""
    binary, why = debian_binary("wrk", "wrk")
    if binary is None:
        return {"reason": why}
    work = ours.log_dir / "wrk"
    work.mkdir(exist_ok=True)
    (work / "auth.lua").write_text(_WRK_SCRIPT)
    (work / "pems").write_bytes(b"\n".join(pem if pem.endswith(b"\n") else pem + b"\n" for pem in pems) + b"\n")
    out: dict[str, Any] = {"client": f"wrk -t2 -c8 -d{AUTH_SECONDS:.0f}s, {ROUNDS} runs"}
    for mode, header in (("close", "close"), ("keepalive", "keep-alive")):
        runs = []
        for _ in range(ROUNDS):
            env = {
                **os.environ,
                "SEACAT_BENCH_PEMS": str(work / "pems"),
                "SEACAT_BENCH_PATH": path,
                "SEACAT_BENCH_CONNECTION": header,
            }
            url = f"http://{HOST}:{ours.port}/"
            cpu = group_cpu_seconds(ours.pgid)
            command = [binary, "-t2", "-c8", f"-d{AUTH_SECONDS:.0f}s", "--latency", "-s", str(work / "auth.lua"), url]
            done = subprocess.run(command, capture_output=True, text=True, timeout=AUTH_SECONDS + 60, env=env)
            cpu = group_cpu_seconds(ours.pgid) - cpu
            text = done.stdout
            total = _wrk_count(text, "requests in")
            bad = _wrk_count(text, "Non-2xx or 3xx responses")
            rate = next((float(line.split()[1]) for line in text.splitlines() if line.startswith("Requests/sec")), 0.0)
            p50 = next((line.split()[1] for line in text.splitlines() if line.strip().startswith("50%")), None)
            errors = next((line.strip() for line in text.splitlines() if "Socket errors" in line), None)
            runs.append(
                {
                    "per_s": round(rate, 1) if not bad and not errors else 0.0,
                    "requests": total,
                    "non_2xx": bad,
                    "socket_errors": errors,
                    "p50": p50,
                    "server_cpu_ms": round(cpu * 1000 / total, 3) if total else None,
                }
            )
        rates = [r["per_s"] for r in runs]
        say(f"    nginx_authenticate with wrk, {mode}: {rates}/s")
        cpus = [r["server_cpu_ms"] for r in runs if r["server_cpu_ms"] is not None]
        out[mode] = {
            "per_s": round(statistics.median(rates), 1),
            "server_cpu_ms": round(statistics.median(cpus), 3) if cpus else None,
            "runs": runs,
        }
    return out


def kill_9(ours: MakeRun) -> dict[str, Any]:
    """kill -9 during KILL_CLIENTS parallel enrolment loops; then start again and look for every certificate."""
    received: list[bytes] = []
    lock = threading.Lock()
    stop = threading.Event()
    deadline = time.monotonic() + KILL_SECONDS
    inputs = [enrolments(KILL_AFTER) for _ in range(KILL_CLIENTS)]
    errors_after_kill = [0]

    def loop(mine: list[Request]) -> None:
        for method, path, body, headers in mine:  # bounded by the inputs and the deadline
            if stop.is_set() or time.monotonic() > deadline:
                return
            try:
                status, data = ours.call(method, path, body, {**headers, "Connection": "close"})
            except (OSError, http.client.HTTPException):
                with lock:
                    errors_after_kill[0] += 1
                return
            if enrolled(status, data):
                with lock:
                    received.append(data)

    pool = [threading.Thread(target=loop, args=(mine,), daemon=True) for mine in inputs]
    for t in pool:
        t.start()
    while time.monotonic() < deadline:
        with lock:
            if len(received) >= KILL_AFTER:
                break
        time.sleep(0.01)
    ours.kill()
    killed_at = len(received)
    stop.set()
    for t in pool:
        t.join(timeout=REQUEST_TIMEOUT + 5)
    integrity = ours.integrity()
    ready = ours.start()
    stored = ours.stored_certificates()
    got = set(received)
    served = 0
    for der in received[:100]:  # a sample through the API too
        identity = x509.load_der_x509_certificate(der).subject.rfc4514_string().removeprefix("CN=")
        status, body = ours.call("GET", f"/{TENANT}/seacat/get/{identity}", b"", {})
        served += status == 200 and body == der
    return {
        "clients": KILL_CLIENTS,
        "received": len(got),
        "received_before_kill_signal": killed_at,
        "found": len(got & stored),
        "missing": len(got - stored),
        "served_sample": f"{served}/{min(100, len(received))}",
        "integrity_check": integrity,
        "restart_to_health_s": round(ready, 3),
        "clients_alive_after": sum(t.is_alive() for t in pool),
        "all_found": bool(got) and got <= stored and integrity == "ok",
    }


def fill(ours: MakeRun, target: int | None = None, seconds: float = FILL_SECONDS) -> dict[str, Any]:
    """bench/fill.py on the stopped server's directory, to ``target`` client certificates (default: as
    many more as CEILING): the service's enrolment use case in-process, one process per CPU."""
    if target is None:
        target = len(ours.stored_certificates()) + CEILING
    done = subprocess.run(
        [sys.executable, "-m", "bench.fill", str(ours.data), TENANT, str(target), str(seconds)],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith(("SEACAT_", "PYTHON"))},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=seconds + 300,  # and the workers' CRs made before the clock, bounded by bench/fill.py
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.fill failed ({done.returncode}): {done.stderr[-1500:]}")
    return dict(json.loads(done.stderr.strip().splitlines()[-1]))


def restarts(ours: MakeRun) -> dict[str, Any]:
    """Stop and start RESTARTS times on the filled directory: seconds from the start to /health 200."""
    times: list[float] = []
    for _ in range(RESTARTS):
        ours.stop()
        times.append(round(ours.start(), 3))
    banner = ours.log.read_text()
    holds = next((line.strip() for line in banner.splitlines() if " holds " in line), "")
    return {
        "seconds": round(statistics.median(times), 3),
        "runs": times,
        "client_certificates": len(ours.stored_certificates()),
        "banner": holds,
    }


def disk_sync(directory: Path, count: int = 100, seconds: float = 5.0) -> dict[str, Any]:
    """What one durable commit waits for on this disk: fdatasync after a 4 KiB write (SQLite's
    synchronous=FULL syncs the log once per commit, and writers commit one at a time)."""
    path = directory / "sync-probe"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    took: list[float] = []
    try:
        deadline = time.monotonic() + seconds
        for i in range(count):
            os.pwrite(fd, os.urandom(4096), (i % 16) * 4096)
            started = time.perf_counter()
            os.fdatasync(fd)
            took.append(time.perf_counter() - started)
            if time.monotonic() > deadline:
                break
    finally:
        os.close(fd)
        path.unlink()
    took.sort()
    return {"fdatasync_p50_ms": _pct(took, 0.5), "fdatasync_p95_ms": _pct(took, 0.95), "count": len(took)}


def _step(name: str, out: dict[str, Any], work: Callable[[], Any]) -> Any:
    say(f"  {name} ...")
    started = time.monotonic()
    try:
        result = work()
    except Exception as exc:  # record it, go on with the others
        out.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"[:1000]
        say(f"    ERROR: {out['errors'][name]}")
        return None
    say(f"    ({time.monotonic() - started:.0f} s)")
    return result


def run() -> dict[str, Any]:
    out: dict[str, Any] = {
        "load_average": {"start": load_average()},
        "client": f"http.client, {THREADS} threads; a new connection per request (Connection: close) or one "
        f"keep-alive connection per thread; at most {REQUESTS} requests or {SECONDS:.0f} s per turn, "
        f"{ROUNDS} rounds, CFSSL and ours in turns, after {WARMUP} warm-up requests each",
    }
    with tempfile.TemporaryDirectory(prefix="seacat-bench-http-") as tmp:
        workdir = Path(tmp)
        (workdir / "cfssl").mkdir()
        ours = MakeRun(workdir / "seacat-local", workdir)
        try:
            out["start_empty_s"] = round(ours.start(), 3)
            ours.create_tenant()
            first_log = ours.log
            issued: list[bytes] = []
            try:
                with cfssl_server(workdir / "cfssl") as theirs:
                    out["cfssl_version"] = theirs.version
                    compared = _step("enrolment vs CFSSL signing", out, lambda: side_by_side(ours, theirs))
            except RuntimeError as exc:  # no CFSSL: ours alone, and why (an error: the comparison is not made)
                out["cfssl_reason"] = str(exc)
                out.setdefault("errors", {})["CFSSL"] = str(exc)
                say(f"    CFSSL not measured: {exc}")
                compared = _step("enrolment (no CFSSL)", out, lambda: side_by_side(ours, None))
            if compared is not None:
                out["enrol"], issued = compared
            out["crowd"] = _step(f"{CROWD} clients at once", out, lambda: crowd(ours))
            out["auth"] = _step("nginx_authenticate", out, lambda: authenticate(ours, issued))
            out["kill_9"] = _step("kill -9 during parallel enrolments", out, lambda: kill_9(ours))
            ours.stop()
            out["disk"] = _step("the disk's fdatasync", out, lambda: disk_sync(workdir))
            out["ceiling"] = _step(
                f"ceiling: {CEILING} enrolments in-process, no HTTP", out, lambda: fill(ours, None, CEILING_SECONDS)
            )
            out["fill"] = _step(
                f"fill to {RESTART_FILL} enrolments (in-process)", out, lambda: fill(ours, RESTART_FILL)
            )
            ours.start()
            out["restart"] = _step(f"restart with {RESTART_FILL} enrolments stored", out, lambda: restarts(ours))
            banner = first_log.read_text().splitlines()
            out["server"] = next((line.split(":", 1)[1].strip() for line in banner if "Server:" in line), None)
        finally:
            if ours.proc is not None:
                ours.stop()
    out["load_average"]["end"] = load_average()
    return out
