"""The emulator run keeps its state across restarts: `make run-emulator`'s stack (moto and its write
journal), its data directory, real HTTP. (tests/e2e/test_persistence.py: the same for `make run`.)

A clean stop (Ctrl-C) and a kill -9 of the whole process group, then a start on the same data
directory: tenants, CA, tokens and certificates are back with the same ids. Also what a start does
with a damaged directory, and `make reset`.
"""

from __future__ import annotations

import http.client as http_client
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from seacat_client.cr import build_cr
from tests.e2e.conftest import EMULATOR, ROOT, Stack, http, kill_stack, setup_tenant, stop_stack
from tests.e2e.conftest import start_stack as start_any_stack

TOKEN = "sct_00000000000000e2_end-to-end-operator-token"


def start_stack(tmp: Path, **kwargs: Any) -> Stack:
    return start_any_stack(tmp, module=EMULATOR, **kwargs)


def emulator(stack: Stack, service: str) -> Any:
    return boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="eu-west-1"
    ).client(service, endpoint_url=stack.emulator_url)


def emulator_ids(stack: Stack) -> dict[str, str]:
    """Ids the emulator generated itself: the KMS key behind the alias, the secrets' ARNs."""
    aliases = emulator(stack, "kms").list_aliases()["Aliases"]
    ids = {"kms": next(a["TargetKeyId"] for a in aliases if a["AliasName"] == "alias/seacat-local")}
    for secret in emulator(stack, "secretsmanager").list_secrets()["SecretList"]:
        ids[secret["Name"]] = secret["ARN"]
    return ids


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def local_run(data: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`make run-emulator` / `make reset-emulator` as a plain subprocess, for the runs that are expected to stop at once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SEACAT_"))}
    env.update({"SEACAT_DATA_DIR": str(data), "PORT": "1", "PYTHONUNBUFFERED": "1"})
    return subprocess.run(
        [sys.executable, "-m", "scripts.local_run", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_restart_keeps_tenant_ca_token_and_client_certificate(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_stack(tmp_path, data_dir=data)
    try:
        assert "no saved state" in first.log.read_text()
        ca_id = setup_tenant(first, "persist", new=True)
        status, _, body = http(
            "POST",
            f"{first.url}/tokens",
            json.dumps({"tenant": "persist", "label": "kept"}).encode(),
            {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        assert status == 201, body
        tenant_token = json.loads(body)["token"]
        device = tmp_path / "device"
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "seacat_client",
                "enroll",
                "--api-url",
                f"{first.url}/persist/seacat",
                "--dir",
                str(device),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        der = (device / "seacat_cert.der").read_bytes()
        identity = x509.load_der_x509_certificate(der).subject.rfc4514_string().removeprefix("CN=")
        _, _, bundle = http("GET", f"{first.url}/persist/x509/ca")
        ids = emulator_ids(first)
        assert "seacat/local/persist/ca-key" in ids

        # The directory is owner-only: it holds the CA key in the clear.
        assert mode(data) == 0o700
        assert {p.name for p in data.iterdir()} == {"journal.jsonl", "meta.json", "lock"}
        assert all(mode(p) == 0o600 for p in data.iterdir())
        assert b"PRIVATE KEY" in (data / "journal.jsonl").read_bytes()

        # A second make run on the same directory refuses: one writer only.
        second_run = local_run(data)
        assert second_run.returncode == 2
        assert "another make run is using" in second_run.stderr
    finally:
        assert stop_stack(first) == 0
    assert "the state is saved in" in first.log.read_text()

    second = start_stack(tmp_path, data_dir=data)
    try:
        log = second.log.read_text()
        assert "seacat: restored" in log, log
        assert (
            "1 tenant, 1 CA certificate, 1 CA key (secrets), 2 tokens, 1 certificate request, 1 client certificate,"
            in log
        )
        # the same ids: the tenant's CA, the emulator's KMS key and secret ARN
        assert emulator_ids(second) == ids
        status, _, body = http(
            "GET", f"{second.url}/tenants/persist", headers={"Authorization": f"Bearer {tenant_token}"}
        )
        assert status == 200, body  # the tenant token still works
        assert json.loads(body)["activeCa"] == ca_id and json.loads(body)["caCertificates"] == [ca_id]
        assert http("GET", f"{second.url}/persist/x509/ca")[2] == bundle
        # the client's certificate: served by /get, accepted by the gateway check
        status, _, served = http("GET", f"{second.url}/persist/seacat/get/{identity}")
        assert status == 200 and served == der
        pem = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
        status, headers, body = http(
            "PUT", f"{second.url}/persist/seacat/nginx_authenticate", pem, {"X-SSL-Client-Verify": "SUCCESS"}
        )
        assert status == 200, body
        assert headers["X-SeaCat-Identity"] == identity
        # the client itself sees nothing new: same certificate, no new request
        again = subprocess.run(
            [
                sys.executable,
                "-m",
                "seacat_client",
                "enroll",
                "--api-url",
                f"{second.url}/persist/seacat",
                "--dir",
                str(device),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert again.returncode == 0 and (device / "seacat_cert.der").read_bytes() == der
        # the restored CA key signs: a new device enrols
        key = ec.generate_private_key(ec.SECP256R1())
        status, _, new = http(
            "PUT",
            f"{second.url}/persist/seacat/enroll",
            build_cr(key, application="after"),
            {"Content-Type": "application/octet-stream"},
        )
        assert status == 200
        assert x509.load_der_x509_certificate(new).issuer == x509.load_der_x509_certificate(der).issuer
    finally:
        assert stop_stack(second) == 0


def test_kill_9_during_enrolments_keeps_every_acknowledged_certificate(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_stack(tmp_path, data_dir=data)
    setup_tenant(first, "crash", new=True)
    url = f"{first.url}/crash/seacat/enroll"
    acknowledged: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    stop = threading.Event()
    deadline = time.monotonic() + 60

    def enrol_many() -> None:
        for _ in range(500):  # bounded in count and time
            if stop.is_set() or time.monotonic() > deadline:
                return
            cr = build_cr(ec.generate_private_key(ec.SECP256R1()), application="crash")
            try:
                status, _, body = http("PUT", url, cr, {"Content-Type": "application/octet-stream"})
            except (OSError, http_client.HTTPException):  # the stack is gone, or went mid-answer
                return
            if status == 200:
                cert = x509.load_der_x509_certificate(body)
                with lock:
                    acknowledged.append((cert.subject.rfc4514_string().removeprefix("CN="), body))

    workers = [threading.Thread(target=enrol_many, daemon=True) for _ in range(4)]
    try:
        for worker in workers:
            worker.start()
        while time.monotonic() < deadline:
            with lock:
                if len(acknowledged) >= 40:
                    break
            time.sleep(0.05)
        journal_before = (data / "journal.jsonl").stat().st_size
    finally:
        kill_stack(first)  # kill -9 of the process group while the workers are enrolling
        stop.set()
        for worker in workers:
            worker.join(timeout=35)
    assert not any(worker.is_alive() for worker in workers)
    with lock:
        acked = list(acknowledged)
    assert len(acked) >= 40, first.log.read_text()[-3000:]
    assert (data / "journal.jsonl").stat().st_size >= journal_before

    second = start_stack(tmp_path, data_dir=data)
    try:
        log = second.log.read_text()
        assert "seacat: restored" in log, log
        ready = float(log.split("(ready in ")[1].split(" s)")[0])
        assert ready < 60
        # acknowledged ones, plus at most the few in flight that were journalled but never answered
        restored = int(re.search(r"(\d+) client certificates", log).group(1))  # type: ignore[union-attr]
        assert len(acked) <= restored <= len(acked) + len(workers)
        for identity, der in acked:
            status, _, served = http("GET", f"{second.url}/crash/seacat/get/{identity}")
            assert status == 200 and served == der, identity
        # and it takes new writes after the restore
        status, _, _ = http(
            "PUT",
            url.replace(first.url, second.url),
            build_cr(ec.generate_private_key(ec.SECP256R1()), application="crash"),
            {"Content-Type": "application/octet-stream"},
        )
        assert status == 200
    finally:
        assert stop_stack(second) == 0


def test_an_incomplete_last_record_is_dropped(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_stack(tmp_path, data_dir=data)
    try:
        ca_id = setup_tenant(first, "torn", new=True)
    finally:
        assert stop_stack(first) == 0
    journal = data / "journal.jsonl"
    intact = journal.read_bytes()
    with journal.open("ab") as f:  # what a kill in the middle of a write can leave
        f.write(b'{"seq":999,"method":"POST","url":"http://127.0.0.1:1/","headers":{"X-Amz-Target":"DynamoDB_2')
    second = start_stack(tmp_path, data_dir=data)
    try:
        log = second.log.read_text()
        assert "dropped an incomplete last record" in log, log
        assert journal.read_bytes().startswith(intact)
        status, _, body = http("GET", f"{second.url}/tenants/torn", headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and json.loads(body)["activeCa"] == ca_id
    finally:
        assert stop_stack(second) == 0
    assert journal.read_bytes().startswith(intact) and b'seq":999' not in journal.read_bytes()


def test_a_damaged_journal_stops_the_start_and_reset_clears_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "meta.json").write_text(json.dumps({"format": 1, "moto": "5.2.5"}))
    good = {
        "seq": 1,
        "method": "POST",
        "url": "http://127.0.0.1:1/",
        "headers": {},
        "body": "",
        "body_encoded": False,
        "status": 200,
    }
    damaged = (
        json.dumps(good).encode()
        + b"\n"
        + b'{"seq": 2, "meth\x00\x00\n'
        + json.dumps(good | {"seq": 3}).encode()
        + b"\n"
    )
    (data / "journal.jsonl").write_bytes(damaged)

    run = local_run(data)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "cannot start from the saved state" in run.stderr and "record 2" in run.stderr and "make reset" in run.stderr
    assert (data / "journal.jsonl").read_bytes() == damaged  # nothing changed

    # make reset refuses a directory with files that are not ours, then deletes ours
    (data / "notes.txt").write_text("mine")
    refused = local_run(data, "--reset")
    assert refused.returncode == 1 and data.exists() and "not deleting" in refused.stderr
    (data / "notes.txt").unlink()
    done = local_run(data, "--reset")
    assert done.returncode == 0 and not data.exists(), done.stderr
    assert "the next make run starts empty" in done.stdout


def test_a_replay_that_diverges_stops_the_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # a write the emulator answered 200 when it was made, but cannot take now: the state would differ
    record = {
        "seq": 1,
        "method": "POST",
        "url": "http://127.0.0.1:1/",
        "headers": {
            "X-Amz-Target": "DynamoDB_20120810.DeleteItem",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": "AWS4-HMAC-SHA256 Credential=local/20240101/eu-west-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        },
        "body": json.dumps({"TableName": "no-such-table", "Key": {"pk": {"S": "x"}}}),
        "body_encoded": False,
        "status": 200,
    }
    (data / "journal.jsonl").write_text(json.dumps(record) + "\n")
    run = local_run(data)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "record 1 (DeleteItem) answered 400 on replay but 200" in run.stderr


def banner_token(stack: Stack) -> str:
    return stack.log.read_text().split("Admin token:")[1].split()[0]


def test_the_generated_operator_token_is_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_stack(tmp_path, data_dir=data, extra_env={"SEACAT_ADMIN_TOKEN": ""})
    try:
        token = banner_token(first)
        assert token != TOKEN and token.startswith("sct_")
    finally:
        assert stop_stack(first) == 0
    assert (data / "operator-token").read_text().strip() == token and mode(data / "operator-token") == 0o600
    second = start_stack(tmp_path, data_dir=data, extra_env={"SEACAT_ADMIN_TOKEN": ""})
    try:
        assert banner_token(second) == token
        status, _, body = http(
            "PUT",
            f"{second.url}/tenants/kept",
            b"{}",
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert status == 201, body
    finally:
        assert stop_stack(second) == 0


def test_journal_reader_keeps_the_intact_prefix(tmp_path: Path) -> None:
    """The reader's rules without a stack: whole lines only, in sequence; a torn tail is not an error."""
    from scripts import journal

    path = tmp_path / "journal.jsonl"
    appended = journal.Journal(path, next_seq=1)
    for n in range(3):
        appended.append("POST", "http://127.0.0.1:1/", {"X-Amz-Target": "T.PutItem"}, f"body {n}".encode(), 200)
    appended.append("POST", "http://127.0.0.1:1/", {}, b"\xff\x00 binary", 400)
    appended.close()
    assert mode(path) == 0o600
    whole = path.read_bytes()
    loaded = journal.read_journal(path)
    assert [r.seq for r in loaded.records] == [1, 2, 3, 4] and loaded.torn_bytes == 0
    assert loaded.records[3].body == b"\xff\x00 binary" and loaded.records[3].status == 400
    for cut in (1, 10, len(whole.splitlines(keepends=True)[-1]) - 1):  # a kill in the middle of the last write
        path.write_bytes(whole[:-cut])
        loaded = journal.read_journal(path)
        assert [r.seq for r in loaded.records] == [1, 2, 3] and loaded.torn_bytes == len(
            whole
        ) - cut - loaded.valid_bytes
    journal.drop_torn_tail(path, loaded.valid_bytes)
    assert whole.startswith(path.read_bytes()) and path.read_bytes().endswith(b"\n")
    # a record out of sequence is damage, not a torn write
    lines = whole.splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[2])
    with pytest.raises(journal.StateError, match="sequence number 3"):
        journal.read_journal(path)
