"""EST (RFC 7030) and the enrolment credentials through the routes (chalice.test.Client), on the
in-memory storage: the wire format a client reads, who may enrol and re-enrol, and what a use costs.
The real clients (strongSwan through NGINX) are in tests/e2e/test_est_strongswan.py."""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import REFERENCE_SPEC, memory_client

TOKEN = "sct_00000000000000ee_est-api-operator-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only"
ROUTERS = {
    "keyTypes": ["P-256", "P-384"],
    "lifetimeHours": 720,
    "extendedKeyUsage": ["clientAuth"],
    "sans": {"dns": ["*.routers.example.com"]},
}


@dataclass
class Est:
    client: Any
    backend: Any
    tenant: str = "acme"

    def admin(self, method: str, path: str, body: object | None = None) -> Any:
        return getattr(self.client.http, method)(
            path, headers=ADMIN, body=json.dumps(body) if body is not None else None
        )

    def credential(self, profile: str = "routers", uses: int = 1, expires: object = "1h") -> dict[str, Any]:
        r = self.admin(
            "post", f"/{self.tenant}/est/credentials", {"profile": profile, "uses": uses, "expiresIn": expires}
        )
        assert r.status_code == 201, r.body
        return dict(r.json_body)

    def post(self, op: str, csr: x509.CertificateSigningRequest, headers: dict[str, str], label: str = "") -> Any:
        der = csr.public_bytes(serialization.Encoding.DER)
        text = base64.encodebytes(der)  # 76-character lines with LF: line breaks must be tolerated
        return self.client.http.post(
            f"/.well-known/est/{self.tenant}{label}/{op}",
            headers={"Content-Type": "application/pkcs10", **headers},
            body=text,
        )


def basic(c: dict[str, Any], password: str | None = None) -> dict[str, str]:
    raw = f"{c['username']}:{password or c['password']}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def make_csr(
    cn: str = "r1.routers.example.com", dns: tuple[str, ...] = ("r1.routers.example.com",), key: Any = None
) -> tuple[Any, x509.CertificateSigningRequest]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    return key, builder.sign(key, hashes.SHA256())


def hdr(response: Any, name: str) -> str:
    return str({k.lower(): v for k, v in response.headers.items()}[name])


def certs_of(response: Any) -> list[x509.Certificate]:
    assert response.status_code == 200, response.body
    assert hdr(response, "content-type") == CERTS_ONLY
    assert hdr(response, "content-transfer-encoding") == "base64"
    return pkcs7.load_der_pkcs7_certificates(base64.b64decode(response.body))


@pytest.fixture
def est(monkeypatch: pytest.MonkeyPatch) -> Iterator[Est]:
    with memory_client(monkeypatch, TOKEN) as (client, backend):
        e = Est(client, backend)
        assert e.admin("put", "/tenants/acme", {}).status_code == 201
        assert client.http.put("/acme/x509/self-signed", headers=ADMIN, body=REFERENCE_SPEC).status_code == 201
        assert e.admin("put", "/acme/x509/profiles/routers", ROUTERS).status_code in (200, 201)
        assert e.admin("put", "/tenants/acme", {"estProfile": "routers"}).status_code == 200
        yield e


def ca_of(est: Est) -> x509.Certificate:
    return x509.load_pem_x509_certificate(est.client.http.get("/acme/x509/ca").body)


# -- cacerts and csrattrs ---------------------------------------------------------------------------


def test_cacerts_is_the_tenants_ca_in_base64_pkcs7(est: Est) -> None:
    r = est.client.http.get("/.well-known/est/acme/cacerts")
    assert certs_of(r) == [ca_of(est)]
    assert certs_of(est.client.http.get("/.well-known/est/acme/routers/cacerts")) == [ca_of(est)]
    assert est.client.http.get("/.well-known/est/acme/nosuch/cacerts").status_code == 404
    missing = est.client.http.get("/.well-known/est/nobody/cacerts")
    assert missing.status_code == 404 and hdr(missing, "content-type").startswith("text/plain")


def test_csrattrs_lists_the_profiles_key_types(est: Est) -> None:
    r = est.client.http.get("/.well-known/est/acme/csrattrs")
    assert r.status_code == 200 and hdr(r, "content-type") == "application/csrattrs"
    der = base64.b64decode(r.body)
    # SEQUENCE { ecdsa-with-SHA256, ecdsa-with-SHA384, SEQUENCE { id-ecPublicKey, SET { secp256r1, secp384r1 } } }
    ec_key = bytes.fromhex("06072a8648ce3d0201")
    p256, p384 = bytes.fromhex("06082a8648ce3d030107"), bytes.fromhex("06052b81040022")
    sha256, sha384 = bytes.fromhex("06082a8648ce3d040302"), bytes.fromhex("06082a8648ce3d040303")
    attribute = b"\x30" + bytes([len(ec_key) + 2 + len(p384) + len(p256)]) + ec_key
    attribute += b"\x31" + bytes([len(p384) + len(p256)]) + p384 + p256  # DER sorts a SET OF
    body = sha256 + sha384 + attribute
    assert der == b"\x30" + bytes([len(body)]) + body


# -- the enrolment credentials ----------------------------------------------------------------------


def test_a_credential_shows_its_password_once_and_is_stored_hashed(est: Est) -> None:
    c = est.credential(uses=3, expires=3600)
    assert c["username"].startswith("estc_") and len(c["password"]) >= 43
    assert (c["profile"], c["uses"], c["usesLeft"], c["state"]) == ("routers", 3, 3, "active")
    expires = datetime.fromisoformat(c["expiresAt"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    listed = est.admin("get", "/acme/est/credentials").json_body
    assert [i["username"] for i in listed["items"]] == [c["username"]]
    one = est.admin("get", f"/acme/est/credentials/{c['username']}").json_body
    for shown in (listed["items"][0], one):
        assert "password" not in shown and c["password"] not in json.dumps(shown)
    stored = est.backend.credentials.get("acme", c["username"])
    assert c["password"] not in repr(stored)


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"profile": "nosuch", "uses": 1, "expiresIn": "1h"}, 404, "profile"),
        ({"profile": "seacat", "uses": 1, "expiresIn": "1h"}, 400, "profile"),
        ({"profile": "routers", "uses": 0, "expiresIn": "1h"}, 400, "uses"),
        ({"profile": "routers", "uses": True, "expiresIn": "1h"}, 400, "uses"),
        ({"profile": "routers", "uses": 1}, 400, "expiresIn"),
        ({"profile": "routers", "uses": 1, "expiresIn": "400d"}, 400, "expiresIn"),
        ({"profile": "routers", "uses": 1, "expiresIn": "soon"}, 400, "expiresIn"),
        ({"profile": "routers", "uses": 1, "expiresIn": "1h", "password": "mine"}, 400, "password"),
    ],
)
def test_a_bad_credential_request_names_the_field(est: Est, body: dict[str, Any], status: int, field: str) -> None:
    r = est.admin("post", "/acme/est/credentials", body)
    assert (r.status_code, r.json_body["field"]) == (status, field), r.body


def test_credentials_are_a_tenant_admins(est: Est) -> None:
    c = est.credential()
    assert est.client.http.get("/acme/est/credentials").status_code == 401
    est.admin("put", "/tenants/other", {})
    token = est.admin("post", "/tokens", {"tenant": "other"}).json_body["token"]
    other = {"Authorization": f"Bearer {token}"}
    assert est.client.http.get("/acme/est/credentials", headers=other).status_code == 404
    assert est.client.http.put(f"/acme/est/credentials/{c['username']}/revoke", headers=other).status_code == 404
    assert est.client.http.get(f"/other/est/credentials/{c['username']}", headers=other).status_code == 404


def test_the_credentials_list_pages(est: Est) -> None:
    made = {est.credential()["username"] for _ in range(3)}
    first = est.admin("get", "/acme/est/credentials?limit=2").json_body
    assert first["count"] == 2 and first["next"]
    second = est.admin("get", f"/acme/est/credentials?limit=2&next={first['next']}").json_body
    assert second["count"] == 1 and second["next"] is None
    assert {i["username"] for i in first["items"] + second["items"]} == made


# -- simpleenroll -------------------------------------------------------------------------------------


def test_simpleenroll_issues_a_certificate_under_the_profile(est: Est) -> None:
    c = est.credential()
    key, csr = make_csr()
    (cert,) = certs_of(est.post("simpleenroll", csr, basic(c)))
    ca = ca_of(est)
    cert.verify_directly_issued_by(ca)
    assert cert.subject.rfc4514_string() == "CN=r1.routers.example.com"
    assert cert.public_key() == key.public_key()
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["r1.routers.example.com"]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= timedelta(hours=721)
    shown = est.admin("get", f"/acme/est/credentials/{c['username']}").json_body
    assert (shown["usesLeft"], shown["state"]) == (0, "used")


def test_a_credential_is_refused_past_its_uses_and_a_repeat_costs_none(est: Est) -> None:
    c = est.credential(uses=2)
    _, first = make_csr()
    one = certs_of(est.post("simpleenroll", first, basic(c)))
    assert certs_of(est.post("simpleenroll", first, basic(c))) == one  # the same CSR again: the same certificate
    _, second = make_csr("r2.routers.example.com", ("r2.routers.example.com",))
    certs_of(est.post("simpleenroll", second, basic(c)))
    _, third = make_csr("r3.routers.example.com", ("r3.routers.example.com",))
    refused = est.post("simpleenroll", third, basic(c))
    assert refused.status_code == 403 and b"no use left" in refused.body
    assert est.backend.credentials.get("acme", c["username"]).uses_left == 0


def test_simpleenroll_refuses_without_the_right_credential(est: Est) -> None:
    c = est.credential()
    _, csr = make_csr()
    for headers in ({}, basic(c, "wrong-password"), basic({"username": "estc_" + "0" * 20, "password": "x"})):
        r = est.post("simpleenroll", csr, headers)
        assert r.status_code == 401 and hdr(r, "www-authenticate").startswith('Basic realm="SeaCat PKI EST"')
        assert hdr(r, "content-type").startswith("text/plain")
    other = est.admin("put", "/acme/x509/profiles/others", ROUTERS)
    assert other.status_code in (200, 201)
    assert est.post("simpleenroll", csr, basic(c), "/others").status_code == 403  # a credential for routers
    revoked = est.credential()
    est.admin("put", f"/acme/est/credentials/{revoked['username']}/revoke")
    assert est.post("simpleenroll", csr, basic(revoked)).status_code == 401
    assert est.backend.credentials.get("acme", c["username"]).uses_left == 1  # none of this took a use


def test_a_csr_outside_the_profile_is_a_400_and_takes_no_use(est: Est) -> None:
    c = est.credential()
    _, csr = make_csr("evil.example.org", ("evil.example.org",))
    r = est.post("simpleenroll", csr, basic(c))
    assert r.status_code == 400 and b"subjectAltName" in r.body
    bad = est.client.http.post(
        "/.well-known/est/acme/simpleenroll", headers={"Content-Type": "application/pkcs10", **basic(c)}, body=b"%%%"
    )
    assert bad.status_code == 400 and b"base64" in bad.body
    assert est.backend.credentials.get("acme", c["username"]).uses_left == 1


def test_manual_approval_answers_202_then_the_same_csr_gets_the_certificate(est: Est) -> None:
    assert est.admin("put", "/acme/x509/profiles/manual", {**ROUTERS, "approval": "manual"}).status_code in (200, 201)
    c = est.credential("manual", uses=1)
    _, csr = make_csr()
    pending = est.post("simpleenroll", csr, basic(c), "/manual")
    assert pending.status_code == 202 and int(hdr(pending, "retry-after")) > 0
    again = est.post("simpleenroll", csr, basic(c), "/manual")  # polling takes no use
    assert again.status_code == 202
    from chalicelib.ca.csr import request_id

    approved = est.admin("put", f"/acme/seacat/cr/{request_id(csr)}/approve")
    assert approved.status_code == 200, approved.body
    (cert,) = certs_of(est.post("simpleenroll", csr, basic(c), "/manual"))
    assert cert.subject == csr.subject
    assert est.backend.credentials.get("acme", c["username"]).uses_left == 0


# -- simplereenroll -----------------------------------------------------------------------------------


def enrolled(est: Est) -> tuple[Any, x509.Certificate]:
    c = est.credential()
    key, csr = make_csr()
    (cert,) = certs_of(est.post("simpleenroll", csr, basic(c)))
    return key, cert


def gateway_credential(est: Est) -> str:
    return str(est.admin("post", "/acme/gateway/credential").json_body["credential"])


def forwarded(cert: x509.Certificate, credential: str | None) -> dict[str, str]:
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    headers = {"X-SSL-Client-Cert": urllib.parse.quote(pem), "X-SSL-Client-Verify": "SUCCESS"}
    if credential:
        headers["X-SeaCat-Gateway-Credential"] = credential
    return headers


def test_simplereenroll_with_the_current_certificate_at_the_gateway(est: Est) -> None:
    key, cert = enrolled(est)
    credential = gateway_credential(est)
    new_key, csr = make_csr()  # a new key, the same subject and SANs
    (renewed,) = certs_of(est.post("simplereenroll", csr, forwarded(cert, credential)))
    assert renewed.subject == cert.subject and renewed.public_key() == new_key.public_key()
    assert renewed.serial_number != cert.serial_number
    renewed.verify_directly_issued_by(ca_of(est))


def test_a_forwarded_certificate_counts_only_with_the_gateway_credential(est: Est) -> None:
    _, cert = enrolled(est)
    _, csr = make_csr()
    assert est.post("simplereenroll", csr, forwarded(cert, None)).status_code == 401  # the tenant has none yet
    credential = gateway_credential(est)
    assert est.post("simplereenroll", csr, forwarded(cert, None)).status_code == 401
    assert est.post("simplereenroll", csr, forwarded(cert, "sgc_" + "A" * 43)).status_code == 401
    assert est.post("simplereenroll", csr, {}).status_code == 401
    failed = {**forwarded(cert, credential), "X-SSL-Client-Verify": "FAILED:unknown ca"}
    assert est.post("simplereenroll", csr, failed).status_code == 401


def test_simplereenroll_refuses_a_foreign_a_revoked_certificate_and_another_subject(est: Est) -> None:
    _, cert = enrolled(est)
    credential = gateway_credential(est)
    # A certificate of another CA with the same names.
    foreign_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    foreign = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(foreign_key.public_key())
        .serial_number(cert.serial_number)
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(foreign_key, hashes.SHA256())
    )
    _, csr = make_csr()
    assert est.post("simplereenroll", csr, forwarded(foreign, credential)).status_code == 401
    _, other = make_csr("r9.routers.example.com", ("r9.routers.example.com",))
    r = est.post("simplereenroll", other, forwarded(cert, credential))
    assert r.status_code == 400 and b"subject" in r.body
    cert_id = __import__("hashlib").sha384(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert est.admin("put", f"/acme/x509/cert/{cert_id}/revoke", {"reason": "keyCompromise"}).status_code == 200
    r = est.post("simplereenroll", csr, forwarded(cert, credential))
    assert r.status_code == 403 and b"revoked" in r.body


def test_x509_sign_takes_an_enrolment_credential(est: Est) -> None:
    c = est.credential(uses=1)
    _, csr = make_csr()
    pem = csr.public_bytes(serialization.Encoding.PEM)
    headers = {"Content-Type": "application/pkcs10", "Accept": "application/x-pem-file", **basic(c)}
    signed = est.client.http.post("/acme/x509/sign?profile=routers", headers=headers, body=pem)
    assert signed.status_code == 200, signed.body
    cert = x509.load_pem_x509_certificate(signed.body)
    assert cert.subject == csr.subject and cert.issuer == ca_of(est).subject
    _, second = make_csr("r2.routers.example.com", ("r2.routers.example.com",))
    refused = est.client.http.post(
        "/acme/x509/sign?profile=routers", headers=headers, body=second.public_bytes(serialization.Encoding.PEM)
    )
    assert refused.status_code == 403 and refused.json_body["error"] == "Forbidden"
    wrong = est.client.http.post("/acme/x509/sign?profile=routers", headers={**headers, **basic(c, "nope")}, body=pem)
    assert wrong.status_code == 401 and wrong.json_body["error"] == "Unauthenticated"
