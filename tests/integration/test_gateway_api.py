"""nginx_authenticate, revocation and the CRL, through the Chalice handlers on moto."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from seacat_client.cr import build_cr
from tests.conftest import REFERENCE_SPEC

OCTET = {"Content-Type": "application/octet-stream"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@pytest.fixture
def tenants(client: Any, operator_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEACAT_REVOCATION_CACHE_SECONDS", "0")
    from chalicelib.settings import get_settings

    get_settings.cache_clear()
    for name in ("acme", "other"):
        assert client.http.put(f"/tenants/{name}", headers=auth(operator_token), body="{}").status_code == 201
        assert (
            client.http.put(f"/{name}/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC).status_code
            == 201
        )


def enrol(client: Any, tenant: str = "acme") -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    r = client.http.put(f"/{tenant}/seacat/enroll", headers=OCTET, body=build_cr(key, application="gw"))
    assert r.status_code == 200, r.body
    return key, x509.load_der_x509_certificate(r.body)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def authenticate(
    client: Any, body: bytes, verify: str | None = "SUCCESS", tenant: str = "acme", content_type: str = "text/plain"
) -> Any:
    headers = {
        "Content-Type": content_type,
        "X-Forwarded-For": "192.0.2.1",
        "X-Forwarded-Request": "GET /restricted HTTP/1.1",
    }
    if verify is not None:
        headers["X-SSL-Client-Verify"] = verify
    return client.http.put(f"/{tenant}/seacat/nginx_authenticate", headers=headers, body=body)


def cert_id(cert: x509.Certificate) -> str:
    return hashlib.sha384(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def test_a_valid_certificate_passes_with_its_identity(client: Any, tenants: None) -> None:
    _, cert = enrol(client)
    r = authenticate(client, pem(cert))
    assert r.status_code == 200
    assert r.headers["X-SeaCat-Identity"] == cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    # NGINX sends the original request's content type, if any
    assert authenticate(client, pem(cert), content_type="application/json").status_code == 200
    # the deprecated $ssl_client_cert form (lines indented with tabs)
    tabbed = pem(cert).replace(b"\n", b"\n\t").rstrip(b"\t")
    assert authenticate(client, tabbed).status_code == 200


@pytest.mark.parametrize(
    "body, verify",
    [
        (b"", "NONE"),
        (b"", None),
        (b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n", "SUCCESS"),
        (b"\x00\x01\x02", "SUCCESS"),
        (b"A" * 20000, "SUCCESS"),
    ],
)
def test_401_without_a_usable_certificate(client: Any, tenants: None, body: bytes, verify: str | None) -> None:
    r = authenticate(client, body, verify)
    assert r.status_code == 401
    assert "X-SeaCat-Identity" not in r.headers
    assert r.headers["Cache-Control"] == "no-store"


def test_401_when_nginx_verification_failed(client: Any, tenants: None) -> None:
    _, cert = enrol(client)
    assert authenticate(client, pem(cert), "FAILED:certificate has expired").status_code == 401
    assert authenticate(client, pem(cert), "NONE").status_code == 401


def test_403_for_another_tenants_or_a_foreign_ca(client: Any, tenants: None) -> None:
    _, theirs = enrol(client, "other")
    assert authenticate(client, pem(theirs)).status_code == 403
    assert authenticate(client, pem(theirs), tenant="other").status_code == 200
    # a look-alike CA with the same name but another key: the signature decides, not the header
    fake_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "My Org"), x509.NameAttribute(NameOID.COMMON_NAME, "Root CA")]
    )
    now = datetime.now(UTC)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    forged = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AAAAAAAAAAAAAAAA")]))
        .issuer_name(name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(fake_key, hashes.SHA256())
    )
    assert authenticate(client, pem(forged), "SUCCESS").status_code == 403
    # unknown tenant: 403, never 404 (NGINX would answer 500)
    assert authenticate(client, pem(forged), tenant="nobody").status_code == 403
    assert authenticate(client, pem(forged), tenant="bad.tenant").status_code == 403


def test_403_for_an_rsa_or_expired_certificate(client: Any, tenants: None) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(rsa_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(rsa_key, hashes.SHA256())
    )
    assert authenticate(client, pem(cert)).status_code == 403
    from chalicelib.service import gateway

    _, good = enrol(client)
    assert gateway.authenticate("acme", pem(good), "SUCCESS").status == 200  # verified once, now remembered
    late = datetime.now(UTC) + timedelta(days=400)

    class Later(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Later:
            return late  # type: ignore[return-value]

    import chalicelib.service.gateway as module

    original = module.datetime
    module.datetime = Later  # type: ignore[misc]
    try:
        assert gateway.authenticate("acme", pem(good), "SUCCESS").status == 403
    finally:
        module.datetime = original  # type: ignore[misc]


def test_revoke_certificate(client: Any, tenants: None, operator_token: str) -> None:
    key, cert = enrol(client)
    _, bystander = enrol(client)
    cid = cert_id(cert)
    r = client.http.put(
        f"/acme/x509/cert/{cid}/revoke", headers=auth(operator_token), body=json.dumps({"reason": "keyCompromise"})
    )
    assert r.status_code == 200
    assert r.json_body["status"] == "revoked" and r.json_body["revoked"]["reason"] == "keyCompromise"
    first_at = r.json_body["revoked"]["at"]
    # idempotent: the recorded state, not a new one
    again = client.http.put(
        f"/acme/x509/cert/{cid}/revoke", headers=auth(operator_token), body=json.dumps({"reason": "superseded"})
    )
    assert again.status_code == 200 and again.json_body["revoked"] == {"at": first_at, "reason": "keyCompromise"}
    assert authenticate(client, pem(cert)).status_code == 403
    assert authenticate(client, pem(bystander)).status_code == 200
    # it stops renewing, and /get no longer serves it
    r = client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(key, application="gw"))
    assert r.status_code == 403
    identity = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert client.http.get(f"/acme/seacat/get/{identity}").status_code == 404
    # the CR that got it shows the revocation too
    meta = client.http.get(f"/acme/x509/cert/{cid}", headers=auth(operator_token)).json_body
    cr = client.http.get(f"/acme/seacat/cr/{meta['cr']}", headers=auth(operator_token)).json_body
    assert cr["certificate"] == f"acme:{cid}" and cr["certificateRevoked"]["reason"] == "keyCompromise"
    # in the CRL
    crl = x509.load_der_x509_crl(client.http.get("/acme/x509/crl").body)
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    assert crl.get_revoked_certificate_by_serial_number(bystander.serial_number) is None


def test_revoke_bad_input(client: Any, tenants: None, operator_token: str) -> None:
    _, cert = enrol(client)
    cid = cert_id(cert)
    r = client.http.put(
        f"/acme/x509/cert/{cid}/revoke", headers=auth(operator_token), body=json.dumps({"reason": "because"})
    )
    assert r.status_code == 400 and r.json_body["field"] == "reason"
    r = client.http.put(f"/acme/x509/cert/{cid}/revoke", headers=auth(operator_token), body=json.dumps({"why": "x"}))
    assert r.status_code == 400 and r.json_body["field"] == "why"
    assert (
        client.http.put(f"/acme/x509/cert/{'0' * 96}/revoke", headers=auth(operator_token), body="{}").status_code
        == 404
    )
    assert client.http.put(f"/other/x509/cert/{cid}/revoke", headers=auth(operator_token), body="{}").status_code == 404
    assert client.http.put(f"/acme/x509/cert/{cid}/revoke", body="{}").status_code == 401
    assert authenticate(client, pem(cert)).status_code == 200  # nothing changed


def test_revoke_identity_revokes_every_certificate(aws: None, client: Any, tenants: None, operator_token: str) -> None:
    from chalicelib.service import enrollment

    key, first = enrol(client)
    identity = first.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    renewed = enrollment.enroll(
        "acme", build_cr(key, application="gw"), now=first.not_valid_before_utc + timedelta(days=200)
    )
    assert renewed.der is not None
    second = x509.load_der_x509_certificate(renewed.der)
    r = client.http.put(
        f"/acme/seacat/identity/{identity}/revoke",
        headers=auth(operator_token),
        body='{"reason": "affiliationChanged"}',
    )
    assert r.status_code == 200, r.body
    assert r.json_body["identity"]["revoked"]["reason"] == "affiliationChanged"
    assert {c["status"] for c in r.json_body["certificates"]} == {"revoked"}
    assert len(r.json_body["certificates"]) == 2
    assert client.http.put(f"/acme/seacat/identity/{identity}/revoke", headers=auth(operator_token)).status_code == 200
    for cert in (first, second):
        assert authenticate(client, pem(cert)).status_code == 403
    crl = x509.load_der_x509_crl(client.http.get("/acme/x509/crl").body)
    assert {e.serial_number for e in crl} == {first.serial_number, second.serial_number}
    assert (
        client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(key, application="gw")).status_code == 403
    )
    meta = client.http.get(f"/acme/x509/cert/{cert_id(first)}", headers=auth(operator_token)).json_body
    assert meta["status"] == "revoked"


def test_revoke_identity_revokes_the_newest_certificate_the_index_has_not_seen(
    aws: None, client: Any, tenants: None, operator_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import context

    _, cert = enrol(client)
    identity = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    # the identity index is eventually consistent: simulate it lagging behind the issue
    monkeypatch.setattr(context.current().certificates, "list_identity_certificates", lambda *a, **k: ([], None))
    r = client.http.put(f"/acme/seacat/identity/{identity}/revoke", headers=auth(operator_token), body="{}")
    assert r.status_code == 200, r.body
    assert [c["status"] for c in r.json_body["certificates"]] == ["revoked"]
    crl = x509.load_der_x509_crl(client.http.get("/acme/x509/crl").body)
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


def test_a_revocation_survives_an_identity_write_that_read_before_it(
    aws: None, client: Any, tenants: None, operator_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import context

    key, cert = enrol(client)
    identity = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    store = context.current().certificates
    real_get = store.get_identity
    raced: list[int] = []

    def read_then_revoke(tenant_id: str, name: str) -> Any:
        record = real_get(tenant_id, name)
        if not raced:  # the certificate is revoked between the block's read and its write
            raced.append(0)
            raced[0] = client.http.put(
                f"/acme/x509/cert/{cert_id(cert)}/revoke",
                headers=auth(operator_token),
                body='{"reason": "keyCompromise"}',
            ).status_code
        return record

    monkeypatch.setattr(store, "get_identity", read_then_revoke)
    assert client.http.put(f"/acme/seacat/identity/{identity}/block", headers=auth(operator_token)).status_code == 200
    monkeypatch.setattr(store, "get_identity", real_get)
    assert raced == [200]
    assert client.http.put(f"/acme/seacat/identity/{identity}/unblock", headers=auth(operator_token)).status_code == 200
    assert cert.serial_number in real_get("acme", identity).revoked_serials
    assert authenticate(client, pem(cert)).status_code == 403
    assert (
        client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(key, application="gw")).status_code == 403
    )


def test_a_revoke_that_meets_a_concurrent_write_retries_and_never_answers_unrevoked(
    aws: None, client: Any, tenants: None, operator_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import context
    from chalicelib.errors import Conflict

    store = context.current().certificates
    real_revoke = store.revoke
    calls: list[int] = []

    def conflict_once(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise Conflict("a concurrent transaction")  # what a TransactionConflict becomes
        real_revoke(*args, **kwargs)

    _, cert = enrol(client)
    monkeypatch.setattr(store, "revoke", conflict_once)
    r = client.http.put(
        f"/acme/x509/cert/{cert_id(cert)}/revoke", headers=auth(operator_token), body='{"reason": "keyCompromise"}'
    )
    assert r.status_code == 200 and r.json_body["status"] == "revoked" and len(calls) == 2

    def always_conflict(*args: Any, **kwargs: Any) -> None:
        raise Conflict("a concurrent transaction")

    _, other = enrol(client)
    monkeypatch.setattr(store, "revoke", always_conflict)
    r = client.http.put(
        f"/acme/x509/cert/{cert_id(other)}/revoke", headers=auth(operator_token), body='{"reason": "keyCompromise"}'
    )
    assert r.status_code == 503 and "Retry-After" in r.headers
    assert authenticate(client, pem(other)).status_code == 200  # not revoked, and not said to be


def test_blocked_identity_is_refused_at_the_gateway(client: Any, tenants: None, operator_token: str) -> None:
    _, cert = enrol(client)
    identity = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    client.http.put(f"/acme/seacat/identity/{identity}/block", headers=auth(operator_token))
    assert authenticate(client, pem(cert)).status_code == 403
    client.http.put(f"/acme/seacat/identity/{identity}/unblock", headers=auth(operator_token))
    assert authenticate(client, pem(cert)).status_code == 200


def test_crl_shape(client: Any, tenants: None) -> None:
    r = client.http.get("/acme/x509/crl")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(r.body)
    bundle = x509.load_pem_x509_certificates(client.http.get("/acme/x509/ca").body)
    assert crl.is_signature_valid(bundle[-1].public_key())
    assert crl.issuer == bundle[-1].subject
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > 0
    assert crl.next_update_utc is not None and crl.next_update_utc > crl.last_update_utc
    assert len(crl) == 0
    assert client.http.get("/nobody/x509/crl").status_code == 404


def test_crl_distribution_point_when_public_url_is_set(client: Any, tenants: None, operator_token: str) -> None:
    client.http.put(
        "/tenants/acme", headers=auth(operator_token), body=json.dumps({"publicBaseUrl": "https://pki.example.com/"})
    )
    _, cert = enrol(client)
    ca_id = cert_id(x509.load_pem_x509_certificate(client.http.get("/acme/x509/ca").body))
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    url = f"https://pki.example.com/acme/x509/crl/{ca_id}"  # the CRL under the issuing CA's name
    assert cdp[0].full_name == [x509.UniformResourceIdentifier(url)]
    assert client.http.get(url.removeprefix("https://pki.example.com")).status_code == 200


def test_revocation_cache_window_avoids_reads(client: Any, tenants: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside the window a repeated call makes no DynamoDB read (counted with botocore's events)."""
    from chalicelib.service import gateway
    from chalicelib.settings import get_settings
    from chalicelib.store import models

    _, cert = enrol(client)
    monkeypatch.setenv("SEACAT_REVOCATION_CACHE_SECONDS", "60")
    get_settings.cache_clear()
    gateway.forget()
    calls: list[str] = []
    identities = models.IdentityModel.Meta.table_name
    conn = models.IdentityModel._get_connection().connection.client  # one client serves every table

    def count(model: Any, params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == identities:  # the revocation state (the tenant is cached apart)
            calls.append(model.name)

    conn.meta.events.register("before-call.dynamodb", count)
    assert gateway.authenticate("acme", pem(cert), "SUCCESS").status == 200
    miss = len(calls)
    assert gateway.authenticate("acme", pem(cert), "SUCCESS").status == 200
    assert miss <= 1 and len(calls) == miss


@pytest.mark.slow
def test_crl_reads_every_page_and_skips_expired(aws: None, tenants: None) -> None:
    """Revocation entries are one item each; the CRL follows every page of the index."""
    from chalicelib import context
    from chalicelib.service import revocation
    from chalicelib.store import common, models
    from chalicelib.store.certificates import iter_revoked

    common.ready()
    now = datetime.now(UTC)
    with models.CertificateModel.batch_write() as batch:
        for i in range(1, 1201):
            batch.save(
                models.CertificateModel(
                    f"acme#{i:096x}",
                    kind="seacat",
                    tenant_id="acme",
                    cert_id=f"{i:096x}",
                    serial=f"{i:x}",
                    revoked_at=now,
                    revocation_reason="superseded",
                    revoked_key="acme",
                    not_after=now + (timedelta(days=10) if i <= 1000 else -timedelta(days=1)),
                    created_at=now,
                    modified_at=now,
                )
            )
    assert sum(1 for _ in iter_revoked("acme", page_size=100)) == 1200
    assert sum(1 for _ in iter_revoked("other")) == 0
    context.current().caches.crls.clear()
    result = x509.load_der_x509_crl(revocation.crl_der("acme"))
    assert {e.serial_number for e in result} == set(range(1, 1001))


def test_401_without_the_gateway_verification_header(client: Any, tenants: None, operator_token: str) -> None:
    """NGINX always sends X-SSL-Client-Verify: a request without it did not come through the gateway's check."""
    _, cert = enrol(client)
    r = authenticate(client, pem(cert), verify=None)
    assert r.status_code == 401, r.body
    assert "X-SeaCat-Identity" not in r.headers and r.headers["Cache-Control"] == "no-store"
    assert b"X-SSL-Client-Verify" in r.body
    from chalicelib.service import gateway

    assert gateway.authenticate("acme", pem(cert), None).status == 401
    for verify in ("", " ", "success", "NONE", "FAILED:unable to get issuer certificate"):
        assert authenticate(client, pem(cert), verify=verify).status_code == 401, verify
    assert authenticate(client, pem(cert), verify=" SUCCESS ").status_code == 200
    # none of these came with a certificate the tenant's CA signed and verified: no audit item
    denied = client.http.get("/audit?tenant=acme&type=authentication.denied", headers=auth(operator_token)).json_body[
        "items"
    ]
    assert denied == []


# The words of cryptography's path validation, which must not reach a response or an audit event.
LIBRARY_WORDS = (
    "validation failed",
    "candidates",
    "exhausted",
    "encountered",
    "EKU",
    "basicConstraints",
    "extension",
    "Certificate(",
)


def _issue(
    signer: Any,
    issuer: x509.Name,
    *,
    start: timedelta = -timedelta(hours=1),
    end: timedelta = timedelta(days=30),
    eku: list[x509.ObjectIdentifier] | None = None,
    ca: bool | None = None,
    aki: bool = True,
    algorithm: Any = None,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AAAAAAAAAAAAAAAA")]))
        .issuer_name(issuer)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + start)
        .not_valid_after(now + end)
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    if aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    return builder.sign(signer, algorithm or hashes.SHA256())


def test_403_reasons_say_why_in_stable_words(client: Any, tenants: None, operator_token: str) -> None:
    """Each refusal of path validation gets a short reason of its own, the same in the answer and the audit event."""
    import logging

    import boto3

    ca_pem = boto3.client("secretsmanager").get_secret_value(SecretId="seacat/test/acme/ca-key")["SecretString"]
    ca_key = serialization.load_pem_private_key(ca_pem.encode(), None)
    ca_name = x509.load_pem_x509_certificates(client.http.get("/acme/x509/ca").body)[-1].subject
    look_alike = ec.generate_private_key(ec.SECP256R1())  # same CA name, another key
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa")])
    rsa_self_signed = (
        x509.CertificateBuilder()
        .subject_name(rsa_name)
        .issuer_name(rsa_name)
        .public_key(rsa_key.public_key())
        .serial_number(1)
        .not_valid_before(datetime.now(UTC))
        .not_valid_after(datetime.now(UTC) + timedelta(days=1))
        .sign(rsa_key, hashes.SHA256())
    )
    _, theirs = enrol(client, "other")
    client_auth, server_auth = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH, x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
    cases = [
        ("another tenant's", theirs, "not issued by this tenant's CA"),
        ("look-alike CA", _issue(look_alike, ca_name, eku=[client_auth]), "not issued by this tenant's CA"),
        (
            "look-alike CA, expired",
            _issue(look_alike, ca_name, start=-timedelta(days=9), end=-timedelta(days=1)),
            "not issued by this tenant's CA",
        ),
        ("self-signed RSA", rsa_self_signed, "not issued by this tenant's CA"),
        ("expired", _issue(ca_key, ca_name, start=-timedelta(days=9), end=-timedelta(days=1)), "certificate expired"),
        (
            "not yet valid",
            _issue(ca_key, ca_name, start=timedelta(days=1), end=timedelta(days=9)),
            "certificate not yet valid",
        ),
        ("serverAuth only", _issue(ca_key, ca_name, eku=[server_auth]), "not a client certificate"),
        ("a CA certificate", _issue(ca_key, ca_name, ca=True), "not a client certificate"),
        ("no authority key id", _issue(ca_key, ca_name, aki=False), "not a valid client certificate for this tenant"),
        (
            "SHA-224 signature",
            _issue(ca_key, ca_name, algorithm=hashes.SHA224()),
            "not a valid client certificate for this tenant",
        ),
    ]
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("seacat.gateway")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        for name, cert, reason in cases:
            r = authenticate(client, pem(cert))
            assert (r.status_code, r.body.decode().strip()) == (403, reason), name
            assert "X-SeaCat-Identity" not in r.headers, name
            assert not any(word in r.body.decode() for word in LIBRARY_WORDS), name
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    # path validation refused each: a log line and a metric, no audit item (nothing is written)
    denied = client.http.get(
        "/audit?tenant=acme&type=authentication.denied&limit=100", headers=auth(operator_token)
    ).json_body["items"]
    assert denied == []
    # the library's own words go to a DEBUG line, for whoever debugs
    assert any(rec.levelno == logging.DEBUG and "validation failed" in rec.getMessage() for rec in records)
    # the certificate of this tenant still passes
    _, ours = enrol(client)
    assert authenticate(client, pem(ours)).status_code == 200


def test_403_reasons_for_the_validity_period_whether_verified_before_or_not(client: Any, tenants: None) -> None:
    import chalicelib.service.gateway as module
    from chalicelib.service import gateway

    _, cert = enrol(client)
    original = module.datetime
    for when, reason in (
        (cert.not_valid_after_utc + timedelta(seconds=1), "certificate expired"),
        (cert.not_valid_before_utc - timedelta(seconds=1), "certificate not yet valid"),
    ):

        class At(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> At:
                return when  # type: ignore[return-value]  # noqa: B023 - used within this iteration

        for remembered in (False, True):
            gateway.forget()
            if remembered:  # verified once now, then asked again at `when`
                assert gateway.authenticate("acme", pem(cert), "SUCCESS").status == 200
            module.datetime = At  # type: ignore[misc]
            try:
                verdict = gateway.authenticate("acme", pem(cert), "SUCCESS")
            finally:
                module.datetime = original  # type: ignore[misc]
            assert (verdict.status, verdict.reason) == (403, reason), (reason, remembered)
