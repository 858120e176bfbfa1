"""PKCS#10 against `make run`'s stack with real clients: `openssl req` makes the CSRs, curl sends them to
`/{tenant}/x509/sign`, `openssl verify` checks what comes back; a SAN and an EKU outside the profile are
refused; manual approval answers 202, then the approve route issues."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.e2e.conftest import Stack, http, setup_tenant


def curl(*args: str) -> tuple[int, bytes]:
    """curl's body and status (the last line, from -w)."""
    out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, check=True).stdout
    body, _, status = out.rpartition(b"\n")
    return int(status), body


def openssl_req(tmp: Path, name: str, *extra: str) -> Path:
    csr = tmp / f"{name}.csr"
    subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(tmp / f"{name}.key"),
            "-subj",
            f"/CN={name}",
            *extra,
            "-out",
            str(csr),
        ],
        check=True,
        capture_output=True,
    )
    return csr


def sign(stack: Stack, tenant: str, csr: Path, *headers: str) -> tuple[int, bytes]:
    return curl(
        "-X",
        "POST",
        f"{stack.url}/{tenant}/x509/sign?profile=routers",
        "-H",
        f"Authorization: Bearer {stack.token}",
        "-H",
        "Content-Type: application/pkcs10",
        *[part for header in headers for part in ("-H", header)],
        "--data-binary",
        f"@{csr}",
    )


def put_profile(stack: Stack, tenant: str, body: dict[str, object]) -> None:
    auth = {"Authorization": f"Bearer {stack.token}", "Content-Type": "application/json"}
    status, _, answer = http("PUT", f"{stack.url}/{tenant}/x509/profiles/routers", json.dumps(body).encode(), auth)
    assert status == 201, answer


PROFILE = {
    "keyTypes": ["P-256", "RSA"],
    "lifetimeDays": 90,
    "extendedKeyUsage": ["clientAuth", "serverAuth"],
    "sans": {"dns": ["*.routers.example.com"]},
}


def test_openssl_req_and_curl(stack: Stack, tmp_path: Path) -> None:
    setup_tenant(stack, "pkcs10", new=True)
    put_profile(stack, "pkcs10", PROFILE)
    ca = tmp_path / "ca.pem"
    status, body = curl(f"{stack.url}/pkcs10/x509/ca")
    assert status == 200
    ca.write_bytes(body)

    good = openssl_req(tmp_path, "r1", "-addext", "subjectAltName=DNS:r1.routers.example.com")
    status, body = sign(stack, "pkcs10", good, "Accept: application/x-pem-file")
    assert status == 200, body
    cert = tmp_path / "r1.pem"
    cert.write_bytes(body)
    verify = subprocess.run(
        ["openssl", "verify", "-purpose", "sslclient", "-CAfile", str(ca), str(cert)], capture_output=True, text=True
    )
    assert verify.returncode == 0 and f"{cert}: OK" in verify.stdout, verify.stdout + verify.stderr
    text = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-text"], capture_output=True, text=True, check=True
    ).stdout
    assert "Subject: CN = r1" in text and "DNS:r1.routers.example.com" in text
    assert "TLS Web Client Authentication, TLS Web Server Authentication" in text
    # the PEM of the CSR works too (text/plain), and JSON answers the same certificate as existing
    status, body = curl(
        "-X",
        "POST",
        f"{stack.url}/pkcs10/x509/sign?profile=routers",
        "-H",
        f"Authorization: Bearer {stack.token}",
        "-H",
        "Content-Type: text/plain",
        "--data-binary",
        f"@{good}",
    )
    assert status == 200 and json.loads(body)["outcome"] == "existing"
    assert json.loads(body)["certificate"].strip() == cert.read_text().strip()

    # a SAN outside the profile, an EKU outside it: 400 naming the field; nothing issued
    outside = openssl_req(tmp_path, "r2", "-addext", "subjectAltName=DNS:r2.evil.example.org")
    status, body = sign(stack, "pkcs10", outside)
    assert status == 400 and json.loads(body)["field"] == "subjectAltName[0]", body
    code = openssl_req(
        tmp_path,
        "r3",
        "-addext",
        "subjectAltName=DNS:r3.routers.example.com",
        "-addext",
        "extendedKeyUsage=codeSigning",
    )
    status, body = sign(stack, "pkcs10", code)
    assert status == 400 and json.loads(body)["field"] == "extendedKeyUsage[0]", body


def test_manual_approval_202_then_issue(stack: Stack, tmp_path: Path) -> None:
    setup_tenant(stack, "pkcs10-manual", '{"manualApproval": true}', new=True)
    put_profile(stack, "pkcs10-manual", PROFILE)
    csr = openssl_req(tmp_path, "m1", "-addext", "subjectAltName=DNS:m1.routers.example.com")
    status, body = sign(stack, "pkcs10-manual", csr)
    assert status == 202, body
    pending = json.loads(body)
    assert pending["result"] == "PENDING" and pending["profile"] == "routers"
    auth = ["-H", f"Authorization: Bearer {stack.token}"]
    status, body = curl(*auth, f"{stack.url}/pkcs10-manual/seacat/cr?state=pending")
    assert status == 200 and [i["_id"] for i in json.loads(body)["items"]] == [pending["id"]]
    status, body = curl("-X", "PUT", *auth, f"{stack.url}/pkcs10-manual/seacat/cr/{pending['id']}/approve")
    assert status == 200 and json.loads(body)["request"]["state"] == "issued", body
    # the same CSR again: the certificate the approval issued
    status, body = sign(stack, "pkcs10-manual", csr, "Accept: application/x-pem-file")
    assert status == 200, body
    cert = tmp_path / "m1.pem"
    cert.write_bytes(body)
    ca = tmp_path / "ca.pem"
    ca.write_bytes(curl(f"{stack.url}/pkcs10-manual/x509/ca")[1])
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(ca), str(cert)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
