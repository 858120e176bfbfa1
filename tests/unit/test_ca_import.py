"""PUT /{tenant}/x509/ca/import: a CA certificate made elsewhere (the reference's) becomes the tenant's
active CA byte for byte, only when it is one this service would have made over the tenant's key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from seacat_client.cr import build_cr
from tests.conftest import memory_client
from tests.reference_pki import ca_id, reference_ca, sec1_pem

OPERATOR = "sct_00000000000000dd_import-operator-token-0123456789"
AUTH = {"Authorization": f"Bearer {OPERATOR}", "Content-Type": "application/json"}


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with memory_client(monkeypatch, OPERATOR) as (c, _):
        yield c


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _tenant(client: Any, tenant: str, key: ec.EllipticCurvePrivateKey) -> None:
    body = json.dumps({"privateKey": sec1_pem(key).decode("ascii")}).encode()
    assert client.http.put(f"/tenants/{tenant}", headers=AUTH, body=body).status_code == 201


def _import(client: Any, tenant: str, cert: x509.Certificate | str) -> Any:
    pem = cert if isinstance(cert, str) else _pem(cert)
    return client.http.put(f"/{tenant}/x509/ca/import", headers=AUTH, body=json.dumps({"certificate": pem}).encode())


def test_the_reference_ca_is_imported_byte_for_byte_and_issues(client: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    ca = reference_ca(key)
    _tenant(client, "acme", key)
    r = _import(client, "acme", ca)
    assert r.status_code == 201, r.body
    assert r.json_body["ca_cert"] == ca_id("acme", ca)
    assert r.json_body["certificate"] == _pem(ca)
    shown = client.http.get("/tenants/acme", headers=AUTH).json_body
    assert shown["activeCa"] == ca_id("acme", ca)
    assert [(c["id"], c["state"]) for c in shown["cas"]] == [(ca_id("acme", ca), "active")]
    bundle = client.http.get("/acme/x509/ca").body
    assert x509.load_pem_x509_certificates(bundle) == [ca]
    # A device enrols: its certificate is issued under the imported CA, with its name and key.
    device = ec.generate_private_key(ec.SECP256R1())
    enrolled = client.http.put(
        "/acme/seacat/enroll",
        headers={"Content-Type": "application/octet-stream"},
        body=build_cr(device, application="com.example.app"),
    )
    assert enrolled.status_code == 200, enrolled.body
    issued = x509.load_der_x509_certificate(enrolled.body)
    issued.verify_directly_issued_by(ca)
    answer = client.http.put(
        "/acme/seacat/nginx_authenticate",
        headers={"X-SSL-Client-Verify": "SUCCESS"},
        body=issued.public_bytes(serialization.Encoding.PEM),
    )
    assert answer.status_code == 200 and answer.headers["X-SeaCat-Identity"]
    # Audited as a CA made active, marked imported.
    events = client.http.get("/audit?tenant=acme&type=ca.created", headers=AUTH).json_body["items"]
    assert [e["details"].get("imported") for e in events] == [True]


def test_importing_again_answers_200_and_changes_nothing(client: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    ca = reference_ca(key)
    _tenant(client, "acme", key)
    assert _import(client, "acme", ca).status_code == 201
    before = client.http.get("/tenants/acme", headers=AUTH).json_body
    again = _import(client, "acme", ca)
    assert again.status_code == 200 and again.json_body["ca_cert"] == ca_id("acme", ca)
    assert client.http.get("/tenants/acme", headers=AUTH).json_body == before


def test_a_re_certification_over_the_active_key_is_imported_and_made_active(client: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    first, second = reference_ca(key), reference_ca(key, cn="Devel Root CA 2")
    _tenant(client, "acme", key)
    assert _import(client, "acme", first).status_code == 201
    assert _import(client, "acme", second).status_code == 201
    cas = {c["id"]: c["state"] for c in client.http.get("/tenants/acme", headers=AUTH).json_body["cas"]}
    assert cas == {ca_id("acme", first): "trusted", ca_id("acme", second): "active"}


@pytest.mark.parametrize(
    ("flaw", "field", "words"),
    [
        ("other key", "certificate", "not the tenant's CA key"),
        ("not self-signed", "certificate", "not self-signed"),
        ("not a CA", "certificate.extensions.basicConstraints.CA", "CA true"),
        ("no pathLen", "certificate.extensions.basicConstraints.pathLen", "pathLen"),
        ("no keyCertSign", "certificate.extensions.keyUsage", "keyCertSign"),
        ("expired", "certificate.validity.notAfter", "expired"),
        ("40 years", "certificate.validity.notAfter", "30 years"),
        ("not yet valid", "certificate.validity", "not valid yet"),
        ("two certificates", "certificate", "exactly one"),
        ("garbage", "certificate", "not a PEM certificate"),
        ("control characters", "certificate.subject", "control characters"),
    ],
)
def test_a_ca_certificate_this_service_would_not_have_made_is_refused(
    client: Any, flaw: str, field: str, words: str
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    pem: x509.Certificate | str = {
        "other key": lambda: reference_ca(other),
        "not self-signed": lambda: reference_ca(key, issuer_key=other),
        "not a CA": lambda: reference_ca(key, ca=False),
        "no pathLen": lambda: reference_ca(key, path_length=None),
        "no keyCertSign": lambda: reference_ca(key, key_cert_sign=False),
        "expired": lambda: reference_ca(key, not_before=now - timedelta(days=400), lifetime=timedelta(days=365)),
        "40 years": lambda: reference_ca(key, lifetime=timedelta(days=40 * 365)),
        "not yet valid": lambda: reference_ca(key, not_before=now + timedelta(days=2)),
        "two certificates": lambda: _pem(reference_ca(key)) + _pem(reference_ca(key, cn="x")),
        "garbage": lambda: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        # what a CA made here from the JSON spec may not hold (NUL truncates in C verifiers; ESC reaches terminals)
        "control characters": lambda: reference_ca(key, cn="Root\x00\x1b[2JCA"),
    }[flaw]()
    _tenant(client, "acme", key)
    r = _import(client, "acme", pem)
    assert r.status_code == 400, r.body
    assert r.json_body["field"] == field and words in r.json_body["message"], r.json_body
    shown = client.http.get("/tenants/acme", headers=AUTH).json_body
    assert shown["cas"] == [] and shown["activeCa"] is None


def test_a_retired_ca_certificate_is_not_imported_again(client: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    first = reference_ca(key)
    _tenant(client, "acme", key)
    assert _import(client, "acme", first).status_code == 201
    assert _import(client, "acme", reference_ca(key, cn="Devel Root CA 2")).status_code == 201
    retired = client.http.put(f"/acme/x509/ca/{ca_id('acme', first)}/retire", headers=AUTH, body=b'{"force": true}')
    assert retired.status_code == 200, retired.body
    again = _import(client, "acme", first)
    assert again.status_code == 409 and again.json_body["field"] == "certificate"


def test_a_tenant_token_imports_for_its_own_tenant_only(client: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    _tenant(client, "acme", key)
    _tenant(client, "beta", ec.generate_private_key(ec.SECP256R1()))
    made = client.http.post("/tokens", headers=AUTH, body=b'{"tenant": "beta"}').json_body
    headers = {"Authorization": f"Bearer {made['token']}", "Content-Type": "application/json"}
    body = json.dumps({"certificate": _pem(reference_ca(key))}).encode()
    assert client.http.put("/acme/x509/ca/import", headers=headers, body=body).status_code == 404
    assert client.http.get("/tenants/acme", headers=AUTH).json_body["cas"] == []


def test_unknown_keys_and_a_missing_certificate_are_400(client: Any) -> None:
    _tenant(client, "acme", ec.generate_private_key(ec.SECP256R1()))
    for body, field in ((b"{}", "certificate"), (b'{"certificate": "x", "force": true}', "force")):
        r = client.http.put("/acme/x509/ca/import", headers=AUTH, body=body)
        assert r.status_code == 400 and r.json_body["field"] == field, r.body
