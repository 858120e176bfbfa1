"""`seacat` as a process against `make run`'s stack: the migration from a reference configuration with
a device enrolled by the bundled client passing nginx_authenticate, and Ctrl-C ending `audit --follow`."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.e2e.conftest import ROOT, Stack, command_env, http
from tests.reference_pki import write_reference


def _env(stack: Stack, tmp_path: Path) -> dict[str, str]:
    token_file = tmp_path / "operator-token"
    token_file.write_text(stack.token)
    env = command_env(tmp_path / "unused")
    env.update({"SEACAT_URL": stack.url, "SEACAT_TOKEN_FILE": str(token_file)})
    return env


def seacat(stack: Stack, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "seacat_cli", *args],
        cwd=ROOT,
        env=_env(stack, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stack.token not in done.stdout + done.stderr
    return done


def test_import_reference_then_the_python_client_enrols_and_passes_the_gateway(stack: Stack, tmp_path: Path) -> None:
    config, ref = write_reference(tmp_path, ["cli-ref"])
    args = ["import-reference", str(config), "--ca-cert", f"cli-ref={ref['cli-ref'].ca_file}"]
    dry = seacat(stack, tmp_path, *args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert http("GET", f"{stack.url}/cli-ref/x509/ca")[0] == 404  # nothing written
    done = seacat(stack, tmp_path, *args)
    assert done.returncode == 0, done.stderr
    shown = seacat(stack, tmp_path, "--json", "tenant", "show", "cli-ref")
    assert json.loads(shown.stdout)["activeCa"] == ref["cli-ref"].ca_cert

    device = tmp_path / "device"
    enrolled = subprocess.run(
        [
            sys.executable,
            "-m",
            "seacat_client",
            "enroll",
            "--api-url",
            f"{stack.url}/cli-ref/seacat",
            "--dir",
            str(device),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert enrolled.returncode == 0, enrolled.stderr
    cert = x509.load_der_x509_certificate((device / "seacat_cert.der").read_bytes())
    cert.verify_directly_issued_by(ref["cli-ref"].ca)
    status, headers, _ = http(
        "PUT",
        f"{stack.url}/cli-ref/seacat/nginx_authenticate",
        cert.public_bytes(serialization.Encoding.PEM),
        {"X-SSL-Client-Verify": "SUCCESS"},
    )
    assert status == 200 and headers.get("X-SeaCat-Identity")
    missing = seacat(stack, tmp_path, "tenant", "show", "cli-nobody")
    assert missing.returncode == 3


def test_ctrl_c_ends_audit_follow_with_130(stack: Stack, tmp_path: Path) -> None:
    assert seacat(stack, tmp_path, "tenant", "create", "cli-follow").returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "seacat_cli", "audit", "cli-follow", "--follow", "--interval", "1"],
        cwd=ROOT,
        env=_env(stack, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stderr is not None and process.stdout is not None
        deadline = time.monotonic() + 60
        note = b""
        while b"Ctrl-C stops" not in note and time.monotonic() < deadline:  # it follows once this is out
            ready, _, _ = select.select([process.stderr], [], [], 1)
            if ready:
                chunk = os.read(process.stderr.fileno(), 4096)
                assert chunk, "seacat exited before following"
                note += chunk
        assert b"Ctrl-C stops" in note
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
        rest = process.stderr.read()
        assert b"interrupted" in rest and b"Traceback" not in rest
        assert b"tenant.created" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
