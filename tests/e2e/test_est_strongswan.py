"""EST with a real client: strongSwan's `pki` (5.9.8 on Debian 12) through the rendered NGINX gateway
to `make run`'s stack, all on 127.0.0.1.

The gateway's server certificate comes from a throwaway CA given to strongSwan as --cacert (it takes
no self-signed leaf as its own anchor) and names 127.0.0.1 as an IP SAN. The tenant has a gateway
credential, so the gateway may pass a client certificate on to the PKI (re-enrolment).

strongSwan (`strongswan-pki`, `libstrongswan-extra-plugins` for its curl plugin) and NGINX are
required in CI (.ci/run installs them); elsewhere the tests skip without them.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.e2e.conftest import Stack, http, setup_tenant, start_stack, stop_stack
from tests.e2e.test_gateway import Gateway, require_nginx, start_gateway, start_upstream, stop_process, stop_upstream

TENANT = "estco"
ROUTERS = {
    "keyTypes": ["P-256", "P-384"],
    "lifetimeHours": 720,
    "extendedKeyUsage": ["clientAuth"],
    "sans": {"dns": ["*.routers.example.com"]},
}
SENSORS = {"keyTypes": ["P-256"], "lifetimeHours": 48, "extendedKeyUsage": ["clientAuth"], "sans": {}}


def require_pki() -> str:
    found = shutil.which("pki")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("strongSwan's pki is not installed, and CI must run the EST tests: see .ci/run")
        pytest.skip("strongSwan's pki is not installed (apt-get install strongswan-pki libstrongswan-extra-plugins)")
    return found


def run_pki(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([require_pki(), *args], input=stdin, capture_output=True, timeout=60)


def ok(run: subprocess.CompletedProcess[bytes]) -> bytes:
    assert run.returncode == 0, (run.stdout + run.stderr).decode(errors="replace")[-3000:]
    return run.stdout


@dataclass
class EstSetup:
    pki: Stack
    gateway: Gateway
    url: str
    trust: Path  # the throwaway CA that issued the gateway's server certificate (--cacert)
    work: Path

    def admin(self, method: str, path: str, body: object | None = None) -> tuple[int, dict[str, str], bytes]:
        auth = {"Authorization": f"Bearer {self.pki.token}", "Content-Type": "application/json"}
        return http(method, f"{self.pki.url}{path}", json.dumps(body).encode() if body is not None else None, auth)

    def credential(self, profile: str = "routers", uses: int = 1) -> str:
        status, _, body = self.admin(
            "POST", f"/{TENANT}/est/credentials", {"profile": profile, "uses": uses, "expiresIn": "1h"}
        )
        assert status == 201, body
        made = json.loads(body)
        return f"{made['username']}:{made['password']}"

    def key_and_request(self, name: str, cn: str, san: str | None) -> tuple[Path, Path]:
        key = self.work / f"{name}.key"
        key.write_bytes(ok(run_pki("--gen", "--type", "ecdsa", "--size", "256")))
        request = self.work / f"{name}.p10"
        args = ["--req", "--type", "ecdsa", "--in", str(key), "--dn", f"CN={cn}"]
        if san:
            args += ["--san", san]
        request.write_bytes(ok(run_pki(*args)))
        return key, request

    def enroll(self, request: Path, userpass: str, url: str | None = None) -> subprocess.CompletedProcess[bytes]:
        """`pki --est` (initial enrolment with a credential) through the gateway; the certificate as PEM."""
        return run_pki(
            "--est",
            "--url",
            url or self.url,
            "--cacert",
            str(self.trust),
            "--in",
            str(request),
            "--userpass",
            userpass,
            "--outform",
            "pem",
        )

    def tenant_ca(self) -> Path:
        path = self.work / "tenant-ca.pem"
        if not path.exists():
            status, _, body = http("GET", f"{self.pki.url}/{TENANT}/x509/ca")
            assert status == 200
            path.write_bytes(body)
        return path


def server_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate it issued for 127.0.0.1 (IP SAN): (CA, certificate chain, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EST test TLS CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, chain_path, key_path = directory / "tls-ca.pem", directory / "server-chain.pem", directory / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_path, chain_path, key_path


@pytest.fixture(scope="module")
def est(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EstSetup]:
    require_nginx()
    require_pki()
    pki = start_stack(tmp_path_factory.mktemp("est-stack"))
    try:
        setup_tenant(pki, TENANT)
        work = tmp_path_factory.mktemp("est-work")
        setup = EstSetup(pki, None, "", work, work)  # type: ignore[arg-type]
        for name, profile in (("routers", ROUTERS), ("sensors", SENSORS)):
            status, _, body = setup.admin("PUT", f"/{TENANT}/x509/profiles/{name}", profile)
            assert status in (200, 201), body
        status, _, body = setup.admin("PUT", f"/tenants/{TENANT}", {"estProfile": "routers"})
        assert status == 200, body
        status, _, body = setup.admin("POST", f"/{TENANT}/gateway/credential")
        assert status == 201, body
        credential_file = work / "gateway-credential"
        credential_file.touch(mode=0o600)
        credential_file.write_text(json.loads(body)["credential"])
        trust, chain, key = server_certificate(work)
        upstream = start_upstream()
        try:
            gateway = start_gateway(
                pki,
                TENANT,
                tmp_path_factory.mktemp("est-gateway"),
                upstream,
                "--gateway-credential-file",
                str(credential_file),
                server_cert=(chain, key),
            )
            try:
                setup.gateway, setup.url, setup.trust = gateway, f"https://127.0.0.1:{gateway.port}", trust
                yield setup
            finally:
                stop_process(gateway.process)
        finally:
            stop_upstream(upstream)
    finally:
        stop_stack(pki)


def openssl_verify(ca: Path, cert: Path) -> str:
    run = subprocess.run(
        ["openssl", "verify", "-CAfile", str(ca), str(cert)], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def test_estca_fetches_the_tenants_ca(est: EstSetup) -> None:
    out = est.work / "estca"
    out.mkdir()
    ok(
        run_pki(
            "--estca", "--url", est.url, "--cacert", str(est.trust), "--caout", str(out / "ca.pem"), "--outform", "pem"
        )
    )
    written = sorted(out.iterdir())
    assert written, "pki --estca wrote no file"
    fetched = x509.load_pem_x509_certificates(b"".join(p.read_bytes() for p in written))
    assert fetched == x509.load_pem_x509_certificates(est.tenant_ca().read_bytes())


def test_enrol_with_a_credential_then_reenrol_with_the_certificate(est: EstSetup) -> None:
    userpass = est.credential(uses=1)
    key, request = est.key_and_request("r1", "r1.routers.example.com", "r1.routers.example.com")
    first = est.work / "r1.pem"
    first.write_bytes(ok(est.enroll(request, userpass)))
    assert openssl_verify(est.tenant_ca(), first).strip().endswith(": OK")
    cert = x509.load_pem_x509_certificate(first.read_bytes())
    assert cert.subject.rfc4514_string() == "CN=r1.routers.example.com"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["r1.routers.example.com"]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]

    # the credential had one use: a second device is refused
    _, other = est.key_and_request("r2", "r2.routers.example.com", "r2.routers.example.com")
    refused = est.enroll(other, userpass)
    assert refused.returncode != 0 and not refused.stdout.strip()

    # re-enrolment: a new key, the same names, authenticated by the current certificate over TLS
    cert_der = est.work / "r1.der"
    cert_der.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    _, renewal = est.key_and_request("r1-new", "r1.routers.example.com", "r1.routers.example.com")
    second = est.work / "r1-renewed.pem"
    second.write_bytes(
        ok(
            run_pki(
                "--est",
                "--url",
                est.url,
                "--cacert",
                str(est.trust),
                "--in",
                str(renewal),
                "--cert",
                str(cert_der),
                "--key",
                str(key),
                "--outform",
                "pem",
            )
        )
    )
    assert openssl_verify(est.tenant_ca(), second).strip().endswith(": OK")
    renewed = x509.load_pem_x509_certificate(second.read_bytes())
    assert renewed.subject == cert.subject and renewed.serial_number != cert.serial_number
    assert renewed.public_key() != cert.public_key()


def test_a_profile_named_by_the_urls_path(est: EstSetup) -> None:
    """strongSwan keeps the URL's path: https://gw/sensors asks /sensors/.well-known/est/simpleenroll."""
    userpass = est.credential("sensors")
    _, request = est.key_and_request("s1", "s1", None)
    issued = ok(est.enroll(request, userpass, url=f"{est.url}/sensors"))
    cert = x509.load_pem_x509_certificate(issued)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime <= datetime.timedelta(hours=49)  # the sensors profile's 48 hours, not the routers' 720
    # a routers credential is not one for sensors
    _, again = est.key_and_request("s2", "s2", None)
    refused = est.enroll(again, est.credential("routers"), url=f"{est.url}/sensors")
    assert refused.returncode != 0


def curl_status(est: EstSetup, path: str, body: Path, *tls: str, userpass: str | None = None) -> int:
    """POST a base64 CSR through the gateway with curl; the HTTP status (0: no HTTP answer)."""
    args = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", str(est.trust), *tls]
    if userpass:
        args += ["-u", userpass]
    args += ["-H", "Content-Type: application/pkcs10", "--data-binary", f"@{body}", f"{est.url}{path}"]
    run = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return int(run.stdout or 0)


def test_reenrolment_is_refused_without_a_current_certificate(est: EstSetup, tmp_path: Path) -> None:
    userpass = est.credential(uses=1)
    key, request = est.key_and_request("r5", "r5.routers.example.com", "r5.routers.example.com")
    pem = ok(est.enroll(request, userpass))
    cert_file, key_file = tmp_path / "r5.pem", tmp_path / "r5-key.pem"
    cert_file.write_bytes(pem)
    converted = subprocess.run(
        ["openssl", "pkey", "-inform", "DER", "-in", str(key), "-out", str(key_file)], capture_output=True, timeout=30
    )
    assert converted.returncode == 0, converted.stderr
    _, renewal = est.key_and_request("r5-new", "r5.routers.example.com", "r5.routers.example.com")
    body = tmp_path / "r5-new.b64"
    body.write_bytes(base64.b64encode(renewal.read_bytes()))
    mine = ("--cert", str(cert_file), "--key", str(key_file))

    assert curl_status(est, "/.well-known/est/simplereenroll", body) == 401  # no client certificate
    # the same names from another CA: NGINX itself refuses the handshake's certificate (400)
    other_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = x509.load_pem_x509_certificate(pem)
    foreign = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(other_key.public_key())
        .serial_number(cert.serial_number)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(other_key, hashes.SHA256())
    )
    foreign_cert, foreign_key = tmp_path / "foreign.pem", tmp_path / "foreign-key.pem"
    foreign_cert.write_bytes(foreign.public_bytes(serialization.Encoding.PEM))
    foreign_key.write_bytes(
        other_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    assert (
        curl_status(
            est, "/.well-known/est/simplereenroll", body, "--cert", str(foreign_cert), "--key", str(foreign_key)
        )
        == 400
    )
    assert curl_status(est, "/.well-known/est/simplereenroll", body, *mine) == 200  # curl, as strongSwan did
    # revoked: NGINX lets the handshake pass (it has no CRL), the PKI refuses
    cert_id = hashlib.sha384(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    status, _, answer = est.admin("PUT", f"/{TENANT}/x509/cert/{cert_id}/revoke", {"reason": "keyCompromise"})
    assert status == 200, answer
    assert curl_status(est, "/.well-known/est/simplereenroll", body, *mine) == 403
    assert curl_status(est, "/sensors/.well-known/est/simplereenroll", body, *mine) == 403


def test_manual_approval_202_then_the_same_csr_gets_the_certificate(est: EstSetup, tmp_path: Path) -> None:
    status, _, body = est.admin("PUT", f"/{TENANT}/x509/profiles/manual", {**ROUTERS, "approval": "manual"})
    assert status in (200, 201), body
    userpass = est.credential("manual", uses=1)
    _, request = est.key_and_request("m1", "m1.routers.example.com", "m1.routers.example.com")
    b64 = tmp_path / "m1.b64"
    b64.write_bytes(base64.b64encode(request.read_bytes()))

    def post() -> tuple[int, str, bytes]:
        run = subprocess.run(
            ["curl", "-s", "-D", str(tmp_path / "headers"), "--cacert", str(est.trust), "-u", userpass,
             "-H", "Content-Type: application/pkcs10", "--data-binary", f"@{b64}",
             f"{est.url}/.well-known/est/manual/simpleenroll"],
            capture_output=True, timeout=60,
        )  # fmt: skip
        head = (tmp_path / "headers").read_text()
        return int(head.split()[1]), head.lower(), run.stdout

    status, head, _ = post()
    assert status == 202 and "retry-after: 60" in head
    assert post()[0] == 202  # polling takes no use (the credential had one)
    rid = hashlib.sha384(request.read_bytes()).hexdigest()  # a CSR's request id: SHA-384 of its DER
    status, _, answer = est.admin("PUT", f"/{TENANT}/seacat/cr/{rid}/approve")
    assert status == 200, answer
    status, head, out = post()
    assert status == 200 and "application/pkcs7-mime; smime-type=certs-only" in head
    (cert,) = pkcs7.load_der_pkcs7_certificates(base64.b64decode(out))
    pem = tmp_path / "m1.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    assert openssl_verify(est.tenant_ca(), pem).strip().endswith(": OK")
    assert cert.subject.rfc4514_string() == "CN=m1.routers.example.com"
