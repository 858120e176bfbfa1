"""`make run` keeps its state across restarts: its stack (granian workers on SQLite and the local key
store), its data directory, real HTTP.

A clean stop (Ctrl-C) and a kill -9 of the whole process group during parallel enrolments, then a
start on the same directory: tenants, CA, tokens and certificates are back with the same ids, and
every certificate a client received is there. Also what a start refuses (a directory of the
emulator run, a second run, a wrong key-encryption key) and `make reset`.
(tests/e2e/test_emulator_persistence.py: the same for `make run-emulator`.)
"""

from __future__ import annotations

import base64
import http.client as http_client
import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from seacat_client.cr import build_cr
from tests.e2e.conftest import (
    EMBEDDED,
    EMULATOR,
    ROOT,
    Stack,
    command_env,
    http,
    kill_stack,
    setup_tenant,
    start_stack,
    stop_stack,
)

TOKEN = "sct_00000000000000e2_end-to-end-operator-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
# Every P-256 private key in PKCS#8 (the form the key store seals) begins with these bytes, whatever
# the key: found on disk in DER or in PEM's base64, a key would be there in the clear.
PKCS8_P256_PREFIX = bytes.fromhex("308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420")
DATA_FILES = {"seacat.db", "seacat.db-wal", "seacat.db-shm", "seacat.db-lock", "kek", "lock", "operator-token"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run(data: Path, *args: str, module: str = EMBEDDED, **env: str) -> subprocess.CompletedProcess[str]:
    """`make run` / `make reset` as a plain subprocess, for the runs that are expected to stop at once."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=command_env(data, {"PORT": "1", **env}),
        capture_output=True,
        text=True,
        timeout=60,
    )


# A restart does not replay anything slow: on an idle machine 0.3-0.7 s; the bound leaves room for a
# loaded CI runner (a start under another suite's load was seen at 3.0 s).
READY_BOUND = 10


def ready_seconds(stack: Stack) -> float:
    return float(stack.log.read_text().split("(ready in ")[1].split(" s)")[0])


def enrol_with_client(url: str, device: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seacat_client", "enroll", "--api-url", url, "--dir", str(device)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def snapshot(path: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (mode(p), p.read_bytes()) for p in sorted(path.iterdir())} | {".": (mode(path), b"")}


def test_restart_keeps_tenant_ca_token_and_client_certificate(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_stack(tmp_path, data_dir=data)
    try:
        log = first.log.read_text()
        assert "no saved state" in log and "generated now" in log, log
        ca_id = setup_tenant(first, "persist", new=True)
        status, _, body = http(
            "POST", f"{first.url}/tokens", json.dumps({"tenant": "persist", "label": "kept"}).encode(), ADMIN
        )
        assert status == 201, body
        tenant_token = json.loads(body)["token"]
        device = tmp_path / "device"
        enrolled = enrol_with_client(f"{first.url}/persist/seacat", device)
        assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
        der = (device / "seacat_cert.der").read_bytes()
        identity = x509.load_der_x509_certificate(der).subject.rfc4514_string().removeprefix("CN=")
        _, _, bundle = http("GET", f"{first.url}/persist/x509/ca")

        # The directory is owner-only, and the CA key is in it only sealed.
        assert mode(data) == 0o700
        names = {p.name for p in data.iterdir()}
        assert {"seacat.db", "kek", "lock"} <= names <= DATA_FILES, names
        assert all(mode(p) == 0o600 for p in data.iterdir())
        on_disk = b"".join(p.read_bytes() for p in data.iterdir())
        assert b"PRIVATE KEY" not in on_disk and PKCS8_P256_PREFIX not in on_disk
        assert base64.b64encode(PKCS8_P256_PREFIX)[:40] not in on_disk

        # A second make run on the same directory refuses: one writer only.
        second_run = run(data)
        assert second_run.returncode == 2, second_run.stderr
        assert "another make run is using" in second_run.stderr
    finally:
        assert stop_stack(first) == 0
    assert "the state is saved in" in first.log.read_text()

    second = start_stack(tmp_path, data_dir=data)
    try:
        log = second.log.read_text()
        assert "holds 1 tenant, 1 CA certificate, 1 client certificate, 1 identity, 1 certificate request" in log, log
        assert "2 tokens" in log and "1 CA key" in log, log
        assert ready_seconds(second) <= READY_BOUND
        status, _, body = http(
            "GET", f"{second.url}/tenants/persist", headers={"Authorization": f"Bearer {tenant_token}"}
        )
        assert status == 200, body  # the tenant token still works
        assert json.loads(body)["activeCa"] == ca_id and json.loads(body)["caCertificates"] == [ca_id]
        assert http("GET", f"{second.url}/persist/x509/ca")[2] == bundle
        status, _, served = http("GET", f"{second.url}/persist/seacat/get/{identity}")
        assert status == 200 and served == der
        pem = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
        status, headers, body = http(
            "PUT", f"{second.url}/persist/seacat/nginx_authenticate", pem, {"X-SSL-Client-Verify": "SUCCESS"}
        )
        assert status == 200, body
        assert headers["X-SeaCat-Identity"] == identity
        # the client itself sees nothing new: same certificate
        again = enrol_with_client(f"{second.url}/persist/seacat", device)
        assert again.returncode == 0 and (device / "seacat_cert.der").read_bytes() == der
        # the CA key opens again after the restart: a new device enrols under the same CA
        status, _, new = http(
            "PUT",
            f"{second.url}/persist/seacat/enroll",
            build_cr(ec.generate_private_key(ec.SECP256R1()), application="after"),
            {"Content-Type": "application/octet-stream"},
        )
        assert status == 200
        assert x509.load_der_x509_certificate(new).issuer == x509.load_der_x509_certificate(der).issuer
    finally:
        assert stop_stack(second) == 0


def test_kill_9_during_parallel_enrolments_keeps_every_certificate_a_client_received(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_stack(tmp_path, data_dir=data)
    setup_tenant(first, "crash", new=True)
    url = f"{first.url}/crash/seacat/enroll"
    received: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    stop = threading.Event()
    deadline = time.monotonic() + 60

    def enrol_many() -> None:
        for _ in range(500):  # bounded in count and time
            if stop.is_set() or time.monotonic() > deadline:
                return
            cr = build_cr(ec.generate_private_key(ec.SECP256R1()), application="crash")
            try:
                status, _, body = http("PUT", url, cr, {"Content-Type": "application/octet-stream"}, close=True)
            except (OSError, http_client.HTTPException):  # the stack is gone, or went mid-answer
                return
            if status == 200:
                cert = x509.load_der_x509_certificate(body)
                with lock:
                    received.append((cert.subject.rfc4514_string().removeprefix("CN="), body))

    clients = [threading.Thread(target=enrol_many, daemon=True) for _ in range(8)]
    try:
        for client in clients:
            client.start()
        while time.monotonic() < deadline:
            with lock:
                if len(received) >= 80:
                    break
            time.sleep(0.05)
    finally:
        kill_stack(first)  # kill -9 of the server and its workers while the clients are enrolling
        stop.set()
        for client in clients:
            client.join(timeout=35)
    assert not any(client.is_alive() for client in clients)
    with lock:
        got = list(received)
    assert len(got) >= 80, first.log.read_text()[-3000:]

    # Nothing half-written: the database is intact as the kill left it.
    with sqlite3.connect(data / "seacat.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    second = start_stack(tmp_path, data_dir=data)
    try:
        assert ready_seconds(second) <= READY_BOUND
        log = second.log.read_text()
        stored = int(re.search(r"(\d+) client certificates?\b", log).group(1))  # type: ignore[union-attr]
        # every one a client received, and at most the few in flight that no client saw
        assert len(got) <= stored <= len(got) + len(clients), log
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for identity, der in got:
            status, _, served = http("GET", f"{second.url}/crash/seacat/get/{identity}")
            assert status == 200 and served == der, identity
            status, _, listed = http("GET", f"{second.url}/crash/seacat/identity/{identity}/certificates", headers=auth)
            assert status == 200 and json.loads(listed)["count"] == 1, identity
        # and it takes new writes after the restart
        status, _, _ = http(
            "PUT",
            f"{second.url}/crash/seacat/enroll",
            build_cr(ec.generate_private_key(ec.SECP256R1()), application="crash"),
            {"Content-Type": "application/octet-stream"},
        )
        assert status == 200
    finally:
        assert stop_stack(second) == 0


def test_a_directory_of_the_emulator_run_is_refused_untouched(tmp_path: Path) -> None:
    data = tmp_path / "old"
    data.mkdir(mode=0o755)
    (data / "journal.jsonl").write_text('{"seq":1}\n{"seq":2}\n')
    (data / "meta.json").write_text('{"format": 1, "moto": "5.2.5"}\n')
    (data / "operator-token").write_text("sct_0000000000000001_old-operator-token-xxxxxxxx\n")
    for p in data.iterdir():
        p.chmod(0o644)
    before = snapshot(data)
    refused = run(data)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "holds the state of the emulator run" in refused.stderr and "2 saved writes" in refused.stderr
    assert f"make run-emulator SEACAT_DATA_DIR={data}" in refused.stderr
    assert "make reset" in refused.stderr and "Nothing was changed" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert snapshot(data) == before  # no lock, no key, no database, the modes as they were
    # make reset deletes it, as the message says
    done = run(data, "--reset")
    assert done.returncode == 0 and not data.exists(), done.stderr


def test_the_emulator_run_refuses_a_directory_of_make_run(tmp_path: Path) -> None:
    data = tmp_path / "new"
    data.mkdir(mode=0o700)
    (data / "seacat.db").write_bytes(b"")
    (data / "seacat.db").chmod(0o600)
    before = snapshot(data)
    refused = run(data, module=EMULATOR)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "holds seacat.db" in refused.stderr and "Nothing was changed" in refused.stderr
    assert snapshot(data) == before


def test_a_wrong_key_encryption_key_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    data = tmp_path / "data"
    kek = base64.b64encode(os.urandom(32)).decode()
    first = start_stack(tmp_path, data_dir=data, extra_env={"SEACAT_LOCAL_KEK": kek})
    try:
        assert "Key (KEK):     SEACAT_LOCAL_KEK" in first.log.read_text()
        status, _, body = http("PUT", f"{first.url}/tenants/sealed", b"{}", ADMIN)  # seals its CA key
        assert status == 201, body
    finally:
        assert stop_stack(first) == 0
    assert not (data / "kek").exists()  # the key came from the environment: none written

    for env in ({"SEACAT_LOCAL_KEK": base64.b64encode(os.urandom(32)).decode()}, {}):
        before = snapshot(data)
        refused = run(data, **env)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "Traceback" not in refused.stderr
        if env:
            assert "the key-encryption key does not open this data directory's secrets" in refused.stderr
        else:  # no key at all: none is made up for secrets sealed with another
            assert "no key-encryption key" in refused.stderr
        assert "Nothing was changed" in refused.stderr
        assert snapshot(data) == before
    bad = run(data, SEACAT_LOCAL_KEK="not-a-key")
    assert bad.returncode == 2 and "SEACAT_LOCAL_KEK must hold the base64 of 32" in bad.stderr

    again = start_stack(tmp_path, data_dir=data, extra_env={"SEACAT_LOCAL_KEK": kek})
    assert stop_stack(again) == 0


def test_the_generated_operator_token_is_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_stack(tmp_path, data_dir=data, extra_env={"SEACAT_ADMIN_TOKEN": ""})
    try:
        token = first.log.read_text().split("Admin token:")[1].split()[0]
        assert token != TOKEN and token.startswith("sct_")
    finally:
        assert stop_stack(first) == 0
    assert (data / "operator-token").read_text().strip() == token and mode(data / "operator-token") == 0o600
    second = start_stack(tmp_path, data_dir=data, extra_env={"SEACAT_ADMIN_TOKEN": ""})
    try:
        assert second.log.read_text().split("Admin token:")[1].split()[0] == token
        status, _, body = http(
            "PUT",
            f"{second.url}/tenants/kept",
            b"{}",
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert status == 201, body
        # make reset refuses while the run uses the directory
        busy = run(data, "--reset")
        assert busy.returncode == 1 and data.exists() and "a make run is using it" in busy.stderr
    finally:
        assert stop_stack(second) == 0
    # ... and a directory with files that are not the run's
    (data / "notes.txt").write_text("mine")
    refused = run(data, "--reset")
    assert refused.returncode == 1 and data.exists() and "not deleting" in refused.stderr
    (data / "notes.txt").unlink()
    done = run(data, "--reset")
    assert done.returncode == 0 and not data.exists(), done.stderr
    assert "the next make run starts empty" in done.stdout
