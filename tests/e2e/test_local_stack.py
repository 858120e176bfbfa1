"""End to end through `make run`'s stack: moto server + `chalice local`, real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from seacat_client.cr import build_cr
from tests.conftest import REFERENCE_SPEC
from tests.e2e.conftest import ROOT, Stack, http, setup_tenant, start_stack, stop_stack


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


def test_ctrl_c_stops_everything(tmp_path: Path) -> None:
    other = start_stack(tmp_path, token="sct_00000000000000e3_second-stack-operator-token")
    assert "Admin token:   sct_00000000000000e3_second-stack-operator-token" in other.log.read_text()
    assert stop_stack(other) == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{other.url}/health", timeout=2)
