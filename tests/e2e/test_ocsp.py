"""The OCSP responder with real clients on `make run`'s stack: `openssl ocsp` (POST, with its nonce) and
an RFC 5019 GET with curl, each response verified by openssl against the tenant's CA bundle through the
delegated responder certificate."""

from __future__ import annotations

import base64
import subprocess
import urllib.parse
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from seacat_client.cr import build_cr
from tests.e2e.conftest import Stack, http, setup_tenant
from tests.e2e.conftest import revoke as revoke_der


def enrol(stack: Stack, tenant: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    status, _, body = http(
        "PUT",
        f"{stack.url}/{tenant}/seacat/enroll",
        build_cr(key, application="ocsp"),
        {"Content-Type": "application/octet-stream"},
    )
    assert status == 200, body
    return x509.load_der_x509_certificate(body)


def write(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


def bundle(stack: Stack, tenant: str, path: Path) -> Path:
    status, _, body = http("GET", f"{stack.url}/{tenant}/x509/ca", headers={"Accept": "application/x-pem-file"})
    assert status == 200
    path.write_bytes(body)
    return path


def openssl_ocsp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", "ocsp", *args], capture_output=True, text=True, timeout=60)


def revoke(stack: Stack, tenant: str, cert: x509.Certificate) -> None:
    revoke_der(stack, tenant, cert.public_bytes(serialization.Encoding.DER))


def curl_get(stack: Stack, tenant: str, request: Path, out: Path) -> dict[str, str]:
    """GET <url>/<url-encoded base64 of the DER request> with curl; the response's headers."""
    segment = urllib.parse.quote(base64.b64encode(request.read_bytes()).decode(), safe="")
    run = subprocess.run(
        ["curl", "-sS", "-D", "-", "-o", str(out), f"{stack.url}/{tenant}/ocsp/{segment}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split()[1] == "200", run.stdout
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if ":" in line)}


@pytest.fixture(scope="module")
def tenants(stack: Stack) -> tuple[str, str]:
    setup_tenant(stack, "ocsp-a")
    setup_tenant(stack, "ocsp-b")
    return "ocsp-a", "ocsp-b"


def test_openssl_post_and_curl_get_good_then_revoked(stack: Stack, tenants: tuple[str, str], tmp_path: Path) -> None:
    tenant, _ = tenants
    ca_file = bundle(stack, tenant, tmp_path / "bundle.pem")
    issuer = x509.load_pem_x509_certificates(ca_file.read_bytes())[-1]
    write(tmp_path / "issuer.pem", issuer)
    cert = enrol(stack, tenant)
    write(tmp_path / "cert.pem", cert)
    url = f"{stack.url}/{tenant}/ocsp"
    common = ["-issuer", str(tmp_path / "issuer.pem"), "-cert", str(tmp_path / "cert.pem"), "-CAfile", str(ca_file)]

    # POST, with openssl's nonce (its default): verified, nonce echoed, good.
    run = openssl_ocsp(*common, "-url", url, "-resp_text")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Response verify OK" in run.stderr
    assert "WARNING: no nonce in response" not in run.stdout + run.stderr
    assert "OCSP Nonce" in run.stdout
    assert f"{tmp_path / 'cert.pem'}: good" in run.stdout
    assert "Responder Id: " in run.stdout and "OCSP Signing" in run.stdout  # the delegated responder's EKU

    # GET (RFC 5019) with curl, of a request without nonce that openssl wrote; verified by openssl.
    run = openssl_ocsp(*common, "-no_nonce", "-reqout", str(tmp_path / "req.der"))
    assert run.returncode == 0, run.stderr
    headers = curl_get(stack, tenant, tmp_path / "req.der", tmp_path / "resp.der")
    assert headers["content-type"] == "application/ocsp-response"
    assert "max-age=" in headers["cache-control"]
    run = openssl_ocsp(*common, "-no_nonce", "-respin", str(tmp_path / "resp.der"))
    assert run.returncode == 0 and "Response verify OK" in run.stderr, run.stdout + run.stderr
    assert f"{tmp_path / 'cert.pem'}: good" in run.stdout

    revoke(stack, tenant, cert)
    run = openssl_ocsp(*common, "-url", url)
    assert run.returncode == 0 and "Response verify OK" in run.stderr, run.stdout + run.stderr
    assert f"{tmp_path / 'cert.pem'}: revoked" in run.stdout
    assert "Reason: keyCompromise" in run.stdout
    curl_get(stack, tenant, tmp_path / "req.der", tmp_path / "resp2.der")
    run = openssl_ocsp(*common, "-no_nonce", "-respin", str(tmp_path / "resp2.der"))
    assert run.returncode == 0 and "Response verify OK" in run.stderr, run.stdout + run.stderr
    assert f"{tmp_path / 'cert.pem'}: revoked" in run.stdout


def test_another_tenants_certificate_is_unknown(stack: Stack, tenants: tuple[str, str], tmp_path: Path) -> None:
    tenant, other = tenants
    other_ca = x509.load_pem_x509_certificates(bundle(stack, other, tmp_path / "other.pem").read_bytes())[-1]
    write(tmp_path / "other-issuer.pem", other_ca)
    theirs = write(tmp_path / "theirs.pem", enrol(stack, other))
    ca_file = bundle(stack, tenant, tmp_path / "bundle.pem")
    run = openssl_ocsp(
        "-issuer", str(tmp_path / "other-issuer.pem"), "-cert", str(theirs), "-url", f"{stack.url}/{tenant}/ocsp",
        "-CAfile", str(ca_file), "-resp_text",
    )  # fmt: skip
    # Signed by this tenant's responder, which is no authority on the other tenant's CA: openssl says so,
    # and the status is unknown.
    assert f"{theirs}: unknown" in run.stdout, run.stdout + run.stderr
    run = openssl_ocsp("-issuer", str(tmp_path / "other-issuer.pem"), "-cert", str(theirs), "-url",
                       f"{stack.url}/nosuch-tenant/ocsp", "-CAfile", str(ca_file))  # fmt: skip
    assert "unauthorized" in (run.stdout + run.stderr).lower()
