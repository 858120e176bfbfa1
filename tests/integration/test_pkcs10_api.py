"""PKCS#10 signing under profiles through the HTTP handlers on moto (DynamoDB and Secrets Manager as
deployed): what is stored in the tables, manual approval, revocation into the CRL."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tests.conftest import REFERENCE_SPEC

PROFILE = {"keyTypes": ["P-256", "RSA"], "sans": {"dns": ["*.dev.example.com"]}, "lifetimeHours": 24}


def auth(token: str, content_type: str = "application/json", **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": content_type, **extra}


def csr_der(key: Any, cn: str) -> bytes:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"{cn}.dev.example.com")]), critical=False)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )


def setup(client: Any, token: str, config: dict[str, Any]) -> x509.Certificate:
    assert client.http.put("/tenants/acme", headers=auth(token), body=json.dumps(config)).status_code == 201
    assert client.http.put("/acme/x509/self-signed", headers=auth(token), body=REFERENCE_SPEC).status_code == 201
    r = client.http.put("/acme/x509/profiles/routers", headers=auth(token), body=json.dumps(PROFILE))
    assert r.status_code == 201, r.body
    return x509.load_pem_x509_certificate(client.http.get("/acme/x509/ca").body)


def test_sign_store_revoke_on_dynamodb(client: Any, operator_token: str) -> None:
    ca = setup(client, operator_token, {})
    body = csr_der(rsa.generate_private_key(65537, 2048), "r1")
    r = client.http.post(
        "/acme/x509/sign?profile=routers", headers=auth(operator_token, "application/pkcs10"), body=body
    )
    assert r.status_code == 200, r.body
    answer = r.json_body
    cert = x509.load_pem_x509_certificate(answer["certificate"].encode())
    cert.verify_directly_issued_by(ca)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert 24 * 3600 <= lifetime.total_seconds() <= 24 * 3600 + 301
    request_id = hashlib.sha384(body).hexdigest()

    ddb = boto3.client("dynamodb")
    item = ddb.get_item(TableName="seacat-test-requests", Key={"pk": {"S": f"acme#{request_id}"}}, ConsistentRead=True)
    assert item["Item"]["kind"] == {"S": "csr"} and item["Item"]["profile"] == {"S": "routers"}
    assert item["Item"]["state"] == {"S": "issued"}
    cert_item = ddb.get_item(
        TableName="seacat-test-certificates", Key={"pk": {"S": f"acme#{answer['_id']}"}}, ConsistentRead=True
    )
    assert cert_item["Item"]["kind"] == {"S": "x509"} and cert_item["Item"]["identity"] == {"S": answer["identity"]}
    tenant = ddb.get_item(TableName="seacat-test-tenants", Key={"tenant_id": {"S": "acme"}}, ConsistentRead=True)
    stored = json.loads(tenant["Item"]["config"]["S"])
    assert [p["name"] for p in stored["profiles"]] == ["routers"]

    listed = client.http.get(f"/acme/seacat/identity/{answer['identity']}/certificates", headers=auth(operator_token))
    assert [c["_id"] for c in listed.json_body["items"]] == [answer["_id"]]
    r = client.http.put(
        f"/acme/x509/cert/{answer['_id']}/revoke", headers=auth(operator_token), body='{"reason": "superseded"}'
    )
    assert r.status_code == 200 and r.json_body["status"] == "revoked"
    crl = x509.load_der_x509_crl(client.http.get("/acme/x509/crl").body)
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


def test_manual_approval_on_dynamodb(client: Any, operator_token: str) -> None:
    setup(client, operator_token, {"manualApproval": True})
    body = csr_der(ec.generate_private_key(ec.SECP256R1()), "m1")
    headers = auth(operator_token, "application/pkcs10")
    pending = client.http.post("/acme/x509/sign?profile=routers", headers=headers, body=body)
    assert pending.status_code == 202 and pending.json_body["id"] == hashlib.sha384(body).hexdigest()
    listed = client.http.get("/acme/seacat/cr?state=pending", headers=auth(operator_token)).json_body
    assert [(i["_id"], i["type"]) for i in listed["items"]] == [(pending.json_body["id"], "csr")]
    r = client.http.put(f"/acme/seacat/cr/{pending.json_body['id']}/approve", headers=auth(operator_token))
    assert r.status_code == 200 and r.json_body["request"]["state"] == "issued"
    issued = client.http.post("/acme/x509/sign?profile=routers", headers=headers, body=body)
    assert issued.status_code == 200 and issued.json_body["outcome"] == "existing"
    assert f"acme:{issued.json_body['_id']}" == r.json_body["request"]["certificate"]
    assert client.http.get("/acme/seacat/cr?state=pending", headers=auth(operator_token)).json_body["count"] == 0
