"""Tenant administration and the reference documentation's CA flow, through the Chalice handlers on moto."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import REFERENCE_SPEC


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def put_tenant(client: Any, token: str, tenant: str, body: dict[str, Any] | None = None) -> Any:
    return client.http.put(f"/tenants/{tenant}", headers=auth(token), body=json.dumps(body or {}))


def test_health_needs_no_aws(client: Any) -> None:
    r = client.http.get("/health")
    assert r.status_code == 200 and r.json_body == {"status": "ok"}


def test_reference_flow(client: Any, operator_token: str) -> None:
    r = put_tenant(client, operator_token, "TENANT")
    assert r.status_code == 201, r.body
    assert r.json_body["tenant"] == "TENANT"
    assert "privateKey" not in r.body.decode() and "PRIVATE" not in r.body.decode()
    # repeated PUT: idempotent
    again = put_tenant(client, operator_token, "TENANT")
    assert again.status_code == 200
    assert again.json_body["keyFingerprint"] == r.json_body["keyFingerprint"]

    before = datetime.now(UTC).replace(microsecond=0)
    r = client.http.put("/TENANT/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC)
    assert r.status_code == 201, r.body
    body = r.json_body
    cert_id = body["_id"]
    assert len(cert_id) == 96 and body["ca_cert"] == f"TENANT:{cert_id}"
    cert = x509.load_pem_x509_certificate(body["certificate"].encode())
    der = cert.public_bytes(serialization.Encoding.DER)
    assert hashlib.sha384(der).hexdigest() == cert_id
    assert cert.serial_number == 1
    assert cert.subject.rfc4514_string() == "CN=Root CA,O=My Org"
    assert cert.issuer == cert.subject
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert abs(cert.not_valid_before_utc - before) <= timedelta(seconds=5)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(weeks=1040)
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value == x509.BasicConstraints(ca=True, path_length=0)
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    cert.verify_directly_issued_by(cert)

    # the tenant now names it as its active CA
    tenant = client.http.get("/tenants/TENANT", headers=auth(operator_token)).json_body
    assert tenant["activeCa"] == f"TENANT:{cert_id}"

    # a second CA: both listed in the public bundle, the newest active
    r2 = client.http.put("/TENANT/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC)
    assert r2.status_code == 201
    bundle = client.http.get("/TENANT/x509/ca")
    assert bundle.status_code == 200
    assert bundle.headers["Content-Type"] == "application/x-pem-file"
    certs = x509.load_pem_x509_certificates(bundle.body)
    assert [hashlib.sha384(c.public_bytes(serialization.Encoding.DER)).hexdigest() for c in certs] == [
        cert_id,
        r2.json_body["_id"],
    ]
    tenant = client.http.get("/tenants/TENANT", headers=auth(operator_token)).json_body
    assert tenant["activeCa"] == f"TENANT:{r2.json_body['_id']}"
    assert len(tenant["caCertificates"]) == 2

    # download: metadata, PEM, DER; the old one still there
    meta = client.http.get(f"/TENANT/x509/cert/{cert_id}", headers=auth(operator_token))
    assert meta.status_code == 200
    for key in ("_id", "_c", "_m", "_v", "type", "family", "tenant", "label", "data"):
        assert key in meta.json_body
    assert bytes.fromhex(meta.json_body["data"]) == der
    pem = client.http.get(
        f"/TENANT/x509/cert/{cert_id}", headers={**auth(operator_token), "Accept": "application/x-pem-file"}
    )
    assert pem.status_code == 200 and x509.load_pem_x509_certificate(pem.body) == cert
    raw = client.http.get(
        f"/TENANT/x509/cert/{cert_id}", headers={**auth(operator_token), "Accept": "application/pkix-cert"}
    )
    assert raw.status_code == 200 and raw.body == der
    tagged = client.http.get(f"/TENANT/x509/cert/TENANT:{cert_id}", headers=auth(operator_token))
    assert tagged.status_code == 200


def test_self_signed_accepts_pem_and_der(client: Any, operator_token: str) -> None:
    put_tenant(client, operator_token, "acme")
    r = client.http.put(
        "/acme/x509/self-signed",
        headers={**auth(operator_token), "Accept": "application/pkix-cert"},
        body=REFERENCE_SPEC,
    )
    assert r.status_code == 201
    assert x509.load_der_x509_certificate(r.body).serial_number == 1
    r = client.http.put(
        "/acme/x509/self-signed",
        headers={**auth(operator_token), "Accept": "application/x-pem-file"},
        body=REFERENCE_SPEC,
    )
    assert r.status_code == 201 and r.body.startswith(b"-----BEGIN CERTIFICATE-----")


def _openssl_key() -> str:
    return subprocess.run(
        ["openssl", "ecparam", "-name", "prime256v1", "-genkey"], check=True, capture_output=True, text=True
    ).stdout


def test_import_openssl_keyfile_and_refuse_replacement(client: Any, operator_token: str) -> None:
    pem = _openssl_key()  # with its EC PARAMETERS block, as the SeaCat PKI docs make it
    r = put_tenant(client, operator_token, "migrated", {"privateKey": pem})
    assert r.status_code == 201, r.body
    assert pem.split("-----BEGIN EC PRIVATE KEY-----")[1][:20] not in r.body.decode()
    assert r.json_body["keyImported"] is True
    # same key again: idempotent
    assert put_tenant(client, operator_token, "migrated", {"privateKey": pem}).status_code == 200
    # a different key: refused, the first one stays
    other = put_tenant(client, operator_token, "migrated", {"privateKey": _openssl_key()})
    assert other.status_code == 409 and other.json_body["field"] == "privateKey"
    # the CA is made with the imported key
    r = client.http.put("/migrated/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC)
    cert = x509.load_pem_x509_certificate(r.json_body["certificate"].encode())
    key = serialization.load_pem_private_key(
        ("-----BEGIN EC PRIVATE KEY-----" + pem.split("-----BEGIN EC PRIVATE KEY-----")[1]).encode(), None
    )
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert cert.public_key() == key.public_key()


def test_key_is_in_a_kms_encrypted_secret(client: Any, operator_token: str) -> None:
    import boto3

    put_tenant(client, operator_token, "secretive")
    sm = boto3.client("secretsmanager")
    desc = sm.describe_secret(SecretId="seacat/test/secretive/ca-key")
    assert desc["KmsKeyId"] == "alias/seacat-test"
    value = sm.get_secret_value(SecretId="seacat/test/secretive/ca-key")["SecretString"]
    assert "PRIVATE KEY" in value


@pytest.mark.parametrize(
    "tenant, body, status, field",
    [
        ("x", {}, 400, "tenant"),
        ("bad.tenant", {}, 400, "tenant"),
        ("a" * 65, {}, 400, "tenant"),
        ("good", {"colour": "red"}, 400, "colour"),
        ("good", {"lifetimeDays": 31}, 400, "lifetimeDays"),
        ("good", {"lifetimeDays": "365"}, 400, "lifetimeDays"),
        ("good", {"approve": "ftp://example.com/"}, 400, "approve"),
        ("good", {"seacat": "yes"}, 400, "seacat"),
        ("good", {"privateKey": "not a key"}, 400, "privateKey"),
        ("good", {"publicBaseUrl": "https://pki.exämple.com"}, 400, "publicBaseUrl"),  # IDNA form needed
        ("good", {"publicBaseUrl": "https://pki.example.com/a b"}, 400, "publicBaseUrl"),
        ("good", {"publicBaseUrl": "https://pki.example.com/?x=1"}, 400, "publicBaseUrl"),
        ("good", {"publicBaseUrl": "https://pki.example.com:99999"}, 400, "publicBaseUrl"),
        ("good", {"approve": "https://hook.exämple.com/validate_cr"}, 400, "approve"),
    ],
)
def test_put_tenant_bad_input(
    client: Any, operator_token: str, tenant: str, body: dict[str, Any], status: int, field: str
) -> None:
    r = put_tenant(client, operator_token, tenant, body)
    assert r.status_code == status, r.body
    assert r.json_body["field"] == field
    assert r.json_body["message"]


def test_bad_bodies(client: Any, operator_token: str) -> None:
    put_tenant(client, operator_token, "acme")
    r = client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body="{not json")
    assert r.status_code == 400 and r.json_body["field"] == "body"
    r = client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body="[]")
    assert r.status_code == 400 and r.json_body["field"] == "body"
    r = client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body="x" * (65 * 1024))
    assert r.status_code == 413
    spec = json.loads(REFERENCE_SPEC)
    spec["subject"]["XX"] = "nope"
    r = client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=json.dumps(spec))
    assert r.status_code == 400 and "XX" in r.json_body["field"]
    spec = json.loads(REFERENCE_SPEC)
    spec["extensions"][0]["basicConstraints"]["pathLen"] = -1
    r = client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=json.dumps(spec))
    assert r.status_code == 400 and "pathLen" in r.json_body["field"]
    spec = json.loads(REFERENCE_SPEC)
    spec["validity"] = {"notBefore": "2030-01-01T00:00:00Z", "notAfter": "2029-01-01T00:00:00Z"}
    r = client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=json.dumps(spec))
    assert r.status_code == 400 and r.json_body["field"] == "validity.notAfter"
    # unknown tenant
    r = client.http.put("/nobody/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC)
    assert r.status_code == 404
    assert client.http.get("/nobody/x509/ca").status_code == 404
    r = client.http.get("/acme/x509/cert/" + "0" * 96, headers=auth(operator_token))
    assert r.status_code == 404
    r = client.http.get("/acme/x509/cert/xyz", headers=auth(operator_token))
    assert r.status_code == 400 and r.json_body["field"] == "id"


def test_the_active_ca_must_be_able_to_issue(client: Any, operator_token: str) -> None:
    """Each self-signed certificate becomes the tenant's issuing CA at once: refuse one that cannot be."""
    put_tenant(client, operator_token, "acme")

    def attempt(spec: dict[str, Any]) -> Any:
        return client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=json.dumps(spec))

    r = attempt({"subject": {"CN": "x"}, "validity": {"notAfter": {"days": 400}}})
    assert r.status_code == 400 and r.json_body["field"] == "extensions.basicConstraints"
    spec = json.loads(REFERENCE_SPEC)
    spec["extensions"] = [
        {"basicConstraints": {"CA": True, "pathLen": 0}, "critical": True},
        {"keyUsage": ["keyCertSign"]},
    ]
    r = attempt(spec)
    assert r.status_code == 400 and r.json_body["field"] == "extensions.keyUsage"  # no cRLSign
    spec = json.loads(REFERENCE_SPEC)
    spec["validity"] = {"notBefore": {"days": 1}, "notAfter": {"weeks": 1040}}
    r = attempt(spec)
    assert r.status_code == 400 and r.json_body["field"] == "validity.notBefore"
    spec["validity"] = {"notBefore": "2020-01-01T00:00:00Z", "notAfter": "2021-01-01T00:00:00Z"}
    r = attempt(spec)
    assert r.status_code == 400 and r.json_body["field"] == "validity.notAfter"
    assert client.http.get("/acme/x509/ca").status_code == 404  # nothing was made
    assert attempt(json.loads(REFERENCE_SPEC)).status_code == 201


def test_an_unacceptable_accept_creates_no_ca(client: Any, operator_token: str) -> None:
    put_tenant(client, operator_token, "acme")
    headers = {**auth(operator_token), "Accept": "text/html"}
    for _ in range(3):
        r = client.http.put("/acme/x509/self-signed", headers=headers, body=REFERENCE_SPEC)
        assert r.status_code == 406 and r.json_body["field"] == "Accept"
    assert client.http.get("/acme/x509/ca").status_code == 404
    assert client.http.get("/tenants/acme", headers=auth(operator_token)).json_body["caCertificates"] == []


def test_a_certificate_id_with_a_percent_encoded_tenant_prefix(client: Any, operator_token: str) -> None:
    put_tenant(client, operator_token, "acme")
    ca_cert = client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC).json_body[
        "ca_cert"
    ]
    hex_id = ca_cert.split(":")[1]
    for form in (hex_id, f"acme:{hex_id}", f"acme%3A{hex_id}", f"acme%3a{hex_id.upper()}"):
        r = client.http.get(f"/acme/x509/cert/{form}", headers=auth(operator_token))
        assert r.status_code == 200 and r.json_body["_id"].endswith(hex_id), form
    r = client.http.get("/acme/x509/cert/acme:xyz", headers=auth(operator_token))
    assert r.status_code == 400 and "TENANT:" in r.json_body["message"]


def test_a_content_type_a_route_does_not_take_is_a_415_in_the_api_error_shape(client: Any, operator_token: str) -> None:
    headers = {**auth(operator_token), "Content-Type": "application/x-www-form-urlencoded"}  # curl -d's default
    r = client.http.put("/tenants/acme", headers=headers, body="{}")
    assert r.status_code == 415
    assert r.json_body["error"] == "UnsupportedMediaType" and r.json_body["field"] == "Content-Type"
    assert "application/x-www-form-urlencoded" in r.json_body["message"]
    assert client.http.get("/tenants/acme", headers=auth(operator_token)).status_code == 404  # nothing made
    no_type = {"Authorization": f"Bearer {operator_token}"}  # no Content-Type: taken as JSON
    assert client.http.put("/tenants/acme", headers=no_type, body="{}").status_code == 201


def test_tokens_and_isolation(client: Any, operator_token: str) -> None:
    put_tenant(client, operator_token, "alpha")
    put_tenant(client, operator_token, "beta")
    client.http.put("/beta/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC)

    assert client.http.get("/tenants/alpha").status_code == 401
    assert (
        client.http.get("/tenants/alpha", headers=auth("sct_0123456789abcdef_wrongwrongwrongwrongwrong")).status_code
        == 401
    )
    assert client.http.get("/tenants/alpha", headers={"Authorization": "Basic abc"}).status_code == 401

    r = client.http.post("/tokens", headers=auth(operator_token), body=json.dumps({"tenant": "alpha"}))
    assert r.status_code == 201
    alpha_token, token_id = r.json_body["token"], r.json_body["tokenId"]
    assert client.http.get("/tenants/alpha", headers=auth(alpha_token)).status_code == 200
    # another tenant's resources look absent, and nothing changes
    assert client.http.get("/tenants/beta", headers=auth(alpha_token)).status_code == 404
    r = client.http.put("/beta/x509/self-signed", headers=auth(alpha_token), body=REFERENCE_SPEC)
    assert r.status_code == 404
    beta = client.http.get("/tenants/beta", headers=auth(operator_token)).json_body
    assert len(beta["caCertificates"]) == 1
    assert put_tenant(client, alpha_token, "beta", {"seacat": False}).status_code == 404
    assert client.http.get("/tenants/beta", headers=auth(operator_token)).json_body["config"]["seacat"] is True
    # tenant tokens cannot make tokens
    r = client.http.post("/tokens", headers=auth(alpha_token), body=json.dumps({"tenant": "alpha"}))
    assert r.status_code == 403 and r.json_body["error"] == "Forbidden"
    r = client.http.post("/tokens", headers=auth(operator_token), body=json.dumps({"tenant": "nobody"}))
    assert r.status_code == 404
    # revoke
    assert client.http.delete(f"/tokens/{token_id}", headers=auth(operator_token)).status_code == 200
    assert client.http.delete(f"/tokens/{token_id}", headers=auth(operator_token)).status_code == 200
    assert client.http.get("/tenants/alpha", headers=auth(alpha_token)).status_code == 401
    assert client.http.delete("/tokens/ffffffffffffffff", headers=auth(operator_token)).status_code == 404


def test_tokens_expire_and_a_tenants_tokens_are_listed(
    client: Any, operator_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from chalicelib.service import tokens as token_service

    put_tenant(client, operator_token, "alpha")
    put_tenant(client, operator_token, "beta")
    made = []
    for body in ({"tenant": "alpha", "label": "ci", "expiresIn": "1h"}, {"tenant": "alpha"}, {"tenant": "beta"}):
        r = client.http.post("/tokens", headers=auth(operator_token), body=json.dumps(body))
        assert r.status_code == 201, r.body
        made.append(r.json_body)
    expiring, lasting, _ = made
    assert expiring["state"] == "active" and lasting["expiresAt"] is None
    expires_at = datetime.fromisoformat(expiring["expiresAt"])
    assert timedelta(minutes=59) < expires_at - datetime.now(UTC) <= timedelta(hours=1)
    # an hour on: the token is refused as expired; the other one still works
    later = datetime.now(UTC) + timedelta(hours=1, seconds=1)
    monkeypatch.setattr(
        token_service, "datetime", type("Later", (datetime,), {"now": staticmethod(lambda tz=None: later)})
    )
    r = client.http.get("/tenants/alpha", headers=auth(expiring["token"]))
    assert r.status_code == 401 and "expired" in r.json_body["message"]
    assert client.http.get("/tenants/alpha", headers=auth(lasting["token"])).status_code == 200
    monkeypatch.undo()
    # the list: the tenant's own, newest first, paged, with their states; never a token or its hash
    assert client.http.delete(f"/tokens/{lasting['tokenId']}", headers=auth(operator_token)).status_code == 200
    r = client.http.get("/tokens?tenant=alpha&limit=1", headers=auth(operator_token))
    assert r.status_code == 200 and r.json_body["count"] == 1 and r.json_body["next"]
    first = r.json_body["items"][0]
    assert (first["tokenId"], first["state"]) == (lasting["tokenId"], "revoked") and first["revokedAt"]
    r = client.http.get(f"/tokens?tenant=alpha&limit=1&next={r.json_body['next']}", headers=auth(operator_token))
    (second,) = r.json_body["items"]
    assert (second["tokenId"], second["label"], second["expiresAt"]) == (
        expiring["tokenId"],
        "ci",
        expiring["expiresAt"],
    )
    assert "token" not in first and "tokenHash" not in first and expiring["token"] not in r.body.decode()
    # operator only; the tenant is required, known, and a valid id; bad lifetimes name the field
    assert client.http.get("/tokens?tenant=alpha", headers=auth(made[2]["token"])).status_code == 403
    for query, status, field in (("", 400, "tenant"), ("?tenant=nobody", 404, None), ("?tenant=a/b", 400, None)):
        r = client.http.get(f"/tokens{query}", headers=auth(operator_token))
        assert r.status_code == status, (query, r.body)
        assert field is None or r.json_body["field"] == field
    for bad in ("forever", 0, 400 * 86400, True, 10**15, -(10**20)):  # huge ones: 400, never a 500
        r = client.http.post(
            "/tokens", headers=auth(operator_token), body=json.dumps({"tenant": "alpha", "expiresIn": bad})
        )
        assert r.status_code == 400 and r.json_body["field"] == "expiresIn", bad


def test_tokens_made_before_the_list_are_listed_once_indexed(client: Any, operator_token: str) -> None:
    """A tenant token as the release before the list wrote it (no index key) works but is not listed;
    `python -m scripts.admin index-tokens` gives it its key, once; the operator's and EST credentials
    are left as they are."""
    from datetime import UTC, datetime

    from chalicelib.store import tokens as stored
    from chalicelib.store.models import TokenModel
    from scripts import admin

    put_tenant(client, operator_token, "alpha")
    made = client.http.post("/tokens", headers=auth(operator_token), body=json.dumps({"tenant": "alpha"})).json_body
    TokenModel("00000000000000ab", token_hash="h", tenant_id="alpha", label="old", created_at=datetime.now(UTC)).save()

    def listed() -> list[str]:
        r = client.http.get("/tokens?tenant=alpha", headers=auth(operator_token))
        return [t["tokenId"] for t in r.json_body["items"]]

    assert listed() == [made["tokenId"]]
    assert admin.main(["index-tokens"]) == 0
    assert listed() == ["00000000000000ab", made["tokenId"]]
    assert stored.index_unlisted() == 0  # once
    from chalicelib.service.tokens import token_id_of

    assert TokenModel.get(token_id_of(operator_token)).credential_key is None  # operator tokens are not listed


def test_tokens_are_stored_hashed(client: Any, operator_token: str) -> None:
    import boto3

    put_tenant(client, operator_token, "alpha")
    token = client.http.post("/tokens", headers=auth(operator_token), body=json.dumps({"tenant": "alpha"})).json_body[
        "token"
    ]
    items = boto3.client("dynamodb").scan(TableName="seacat-test-tokens")["Items"]
    dump = json.dumps(items)
    assert token not in dump and operator_token not in dump
    assert token.split("_", 2)[2] not in dump  # the secret (its base64url may hold "_" too)


# -- a tenant CA is a client-authentication CA and nothing more (spec.check_client_ca) ---------------


def reference_with(*extra: dict[str, Any], validity: dict[str, Any] | None = None, **bc: Any) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(REFERENCE_SPEC)
    if bc:
        spec["extensions"][0]["basicConstraints"] = bc
    spec["extensions"].extend(extra)
    if validity is not None:
        spec["validity"] = validity
    return spec


@pytest.mark.parametrize(
    "spec, field",
    [
        (reference_with({"extendedKeyUsage": ["serverAuth"]}), "extensions[2].extendedKeyUsage[0]"),
        (reference_with({"extendedKeyUsage": ["clientAuth", "serverAuth"]}), "extensions[2].extendedKeyUsage[1]"),
        (reference_with({"extendedKeyUsage": ["anyExtendedKeyUsage"]}), "extensions[2].extendedKeyUsage[0]"),
        (reference_with(CA=True), "extensions[0].basicConstraints.pathLen"),
        (reference_with(CA=True, pathLen=None), "extensions[0].basicConstraints.pathLen"),
        (reference_with(CA=True, pathLen=1), "extensions[0].basicConstraints.pathLen"),
        (reference_with({"subjectAltName": ["DNS:*.google.com"]}), "extensions[2].subjectAltName[0]"),
        (reference_with({"subjectAltName": ["IP:8.8.8.8"]}), "extensions[2].subjectAltName[0]"),
        (reference_with({"subjectAltName": ["URI:https://google.com/"]}), "extensions[2].subjectAltName[0]"),
        (
            reference_with(validity={"notBefore": "1950-01-01T00:00:00Z", "notAfter": "2040-01-01T00:00:00Z"}),
            "validity.notBefore",
        ),
        (reference_with(validity={"notBefore": "now", "notAfter": "9999-12-31T23:59:59Z"}), "validity.notAfter"),
        (reference_with(validity={"notAfter": {"years": 31}}), "validity.notAfter"),
        # the issue's example, all at once: the first field at fault is named
        (
            {
                "subject": {"CN": "*.google.com"},
                "validity": {"notBefore": "1950-01-01T00:00:00Z", "notAfter": "9999-12-31T23:59:59Z"},
                "extensions": [
                    {"basicConstraints": {"CA": True}},
                    {"keyUsage": ["keyCertSign", "cRLSign", "digitalSignature"]},
                    {"extendedKeyUsage": ["serverAuth", "anyExtendedKeyUsage"]},
                    {"subjectAltName": ["DNS:*.google.com"]},
                ],
            },
            "extensions[0].basicConstraints.pathLen",
        ),
    ],
)
def test_a_tenant_token_can_make_only_a_client_ca(
    client: Any, operator_token: str, spec: dict[str, Any], field: str
) -> None:
    put_tenant(client, operator_token, "acme")
    token = client.http.post("/tokens", headers=auth(operator_token), body=json.dumps({"tenant": "acme"})).json_body[
        "token"
    ]
    r = client.http.put("/acme/x509/self-signed", headers=auth(token), body=json.dumps(spec))
    assert r.status_code == 400, r.body
    assert r.json_body["error"] == "InvalidInput" and r.json_body["field"] == field, r.json_body
    assert r.json_body["message"]
    # nothing made, nothing in the public bundle
    assert client.http.get("/acme/x509/ca").status_code == 404
    assert client.http.get("/tenants/acme", headers=auth(token)).json_body["caCertificates"] == []


def test_the_widest_client_ca(client: Any, operator_token: str) -> None:
    """Everything the profile allows: clientAuth, an email contact, 30 years, a start a day back."""
    put_tenant(client, operator_token, "acme")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=23)
    spec = reference_with(
        {"extendedKeyUsage": ["clientAuth"]},
        {"subjectAltName": ["email:pki@example.com"]},
        validity={"notBefore": start.isoformat(), "notAfter": {"years": 30}},
    )
    r = client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=json.dumps(spec))
    assert r.status_code == 201, r.body
    cert = x509.load_pem_x509_certificate(r.json_body["certificate"].encode())
    assert cert.not_valid_before_utc == start
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=30 * 365)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value == x509.BasicConstraints(
        ca=True, path_length=0
    )
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["pki@example.com"]
    assert x509.load_pem_x509_certificates(client.http.get("/acme/x509/ca").body) == [cert]


# -- caches keyed by what callers send are bounded ---------------------------------------------------


def test_invented_tenant_ids_fill_a_bounded_cache_and_never_evict_real_tenants(
    client: Any, operator_token: str
) -> None:
    from chalicelib import context
    from chalicelib.service import tenants

    caches = context.current().caches
    put_tenant(client, operator_token, "acme")
    assert tenants.cached_tenant("acme") is not None
    n = caches.missing_tenants.maxsize
    for i in range(n + 100):
        assert tenants.cached_tenant(f"invented-{i}") is None
    assert len(caches.missing_tenants) <= n
    assert "invented-0" not in caches.missing_tenants and f"invented-{n + 99}" in caches.missing_tenants
    assert "acme" in caches.tenants and len(caches.tenants) == 1


def test_the_tenant_cache_is_bounded(client: Any, operator_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib import context
    from chalicelib.service import tenants

    caches = context.current().caches
    monkeypatch.setattr(caches.tenants, "maxsize", 2)
    for name in ("one", "two", "three"):
        put_tenant(client, operator_token, name)
        assert tenants.cached_tenant(name) is not None
    assert caches.tenants.keys() == ["two", "three"]
    # a tenant made after its "not found" was cached is found once that entry is forgotten
    assert tenants.cached_tenant("later") is None
    put_tenant(client, operator_token, "later")
    tenants.forget_cached("later")
    assert tenants.cached_tenant("later") is not None and "later" not in caches.missing_tenants


def test_parsed_ca_and_crl_caches_are_bounded(
    client: Any, operator_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import context

    caches = context.current().caches
    monkeypatch.setattr(caches.ca_certs, "maxsize", 2)
    monkeypatch.setattr(caches.crls, "maxsize", 2)
    put_tenant(client, operator_token, "acme")
    ids = [
        client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC).json_body["_id"]
        for _ in range(3)
    ]
    for ca_id in ids:
        assert client.http.get(f"/acme/x509/crl/{ca_id}").status_code == 200
    assert client.http.get("/acme/x509/crl").status_code == 200
    assert len(caches.crls) == 2 and ("acme", "") in caches.crls
    assert len(caches.ca_certs) == 2
