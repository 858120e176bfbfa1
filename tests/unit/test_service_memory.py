"""The whole service on the in-memory storage ports: the same behaviour as on DynamoDB, no AWS."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from seacat_client.cr import build_cr
from tests.conftest import REFERENCE_SPEC, memory_client

TOKEN = "sct_00000000000000bb_memory-operator-token-0123456789"
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with memory_client(monkeypatch, TOKEN, SEACAT_REVOCATION_CACHE_SECONDS="0") as (client, backend):
        yield client, backend


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def test_enrol_renew_revoke_authenticate(memory: Any) -> None:
    client, backend = memory
    assert client.http.put("/tenants/acme", headers=admin(), body="{}").status_code == 201
    assert client.http.put("/acme/x509/self-signed", headers=admin(), body=REFERENCE_SPEC).status_code == 201
    key = ec.generate_private_key(ec.SECP256R1())
    first = client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(key, application="m"))
    assert first.status_code == 200
    again = client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(key, application="m"))
    assert again.body == first.body

    from chalicelib.service import enrollment

    cert = x509.load_der_x509_certificate(first.body)
    renewed = enrollment.enroll(
        "acme", build_cr(key, application="m"), now=cert.not_valid_before_utc + timedelta(days=200)
    )
    assert renewed.outcome == "renewed" and renewed.der != first.body

    # the first certificate is still valid now (the renewal above was dated 200 days ahead)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    auth = client.http.put("/acme/seacat/nginx_authenticate", headers={"X-SSL-Client-Verify": "SUCCESS"}, body=pem)
    assert auth.status_code == 200, auth.body
    cert_id = hashlib.sha384(first.body).hexdigest()
    r = client.http.put(
        f"/acme/x509/cert/{cert_id}/revoke", headers=admin(), body=json.dumps({"reason": "keyCompromise"})
    )
    assert r.status_code == 200 and r.json_body["status"] == "revoked"
    assert (
        client.http.put(
            "/acme/seacat/nginx_authenticate", headers={"X-SSL-Client-Verify": "SUCCESS"}, body=pem
        ).status_code
        == 403
    )
    crl = x509.load_der_x509_crl(client.http.get("/acme/x509/crl").body)
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number)

    events = [e.event for e in backend.shared.audit]
    for expected in (
        "tenant.created",
        "ca.created",
        "certificate.issued",
        "certificate.renewed",
        "certificate.revoked",
    ):
        assert expected in events
    # the in-memory store keeps the same invariants: a serial claimed once, versions moving
    assert len(backend.certificates.serials) == 2


def test_manual_approval_and_conflicts(memory: Any) -> None:
    client, _ = memory
    client.http.put("/tenants/acme", headers=admin(), body='{"manualApproval": true}')
    client.http.put("/acme/x509/self-signed", headers=admin(), body=REFERENCE_SPEC)
    key = ec.generate_private_key(ec.SECP256R1())
    pending = client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(key, application="m"))
    assert pending.status_code == 202
    cr_id = pending.json_body["id"]
    listed = client.http.get("/acme/seacat/cr?state=pending&limit=1", headers=admin()).json_body
    assert [i["_id"] for i in listed["items"]] == [cr_id] and listed["next"] is None
    assert client.http.put(f"/acme/seacat/cr/{cr_id}/approve", headers=admin()).status_code == 200
    assert client.http.put(f"/acme/seacat/cr/{cr_id}/reject", headers=admin()).status_code == 409
    assert client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(key, application="m")).status_code == 200
    # a different key for an existing tenant is refused
    other = client.http.put(
        "/tenants/acme",
        headers=admin(),
        body=json.dumps(
            {
                "privateKey": ec.generate_private_key(ec.SECP256R1())
                .private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
                .decode()
            }
        ),
    )
    assert other.status_code == 409


def test_ca_rotation_retirement_and_revocation_in_memory(memory: Any) -> None:
    client, backend = memory
    assert client.http.put("/tenants/acme", headers=admin(), body="{}").status_code == 201
    old = client.http.put("/acme/x509/self-signed", headers=admin(), body=REFERENCE_SPEC).json_body["_id"]
    key = ec.generate_private_key(ec.SECP256R1())
    first = x509.load_der_x509_certificate(
        client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(key, application="m")).body
    )
    rotated = client.http.post("/acme/x509/ca/rotate", headers=admin(), body=REFERENCE_SPEC)
    assert rotated.status_code == 201
    new = rotated.json_body["_id"]
    secret = f"memory/acme/ca-key-{rotated.json_body['keyFingerprint'][:16]}"
    assert secret in backend.keystore.keys
    renewed = x509.load_der_x509_certificate(
        client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(key, application="m")).body
    )
    assert renewed.serial_number != first.serial_number
    retire = client.http.put(f"/acme/x509/ca/{old}/retire", headers=admin(), body="{}")
    assert retire.status_code == 409 and "still covers 1" in retire.json_body["message"]
    retire = client.http.put(f"/acme/x509/ca/{old}/retire", headers=admin(), body='{"force": true}')
    assert retire.status_code == 200 and retire.json_body["keyDeletionScheduled"] is True
    assert set(backend.keystore.deletions) == {"memory/acme/ca-key"}
    assert backend.certificates.certs[("acme", old)].final_crl is not None
    assert client.http.get(f"/acme/x509/crl/{old}").body == backend.certificates.certs[("acme", old)].final_crl
    gateway = {"Content-Type": "text/plain", "X-SSL-Client-Verify": "SUCCESS"}
    for cert, status in ((first, 403), (renewed, 200)):
        pem = cert.public_bytes(serialization.Encoding.PEM)
        assert client.http.put("/acme/seacat/nginx_authenticate", headers=gateway, body=pem).status_code == status
    assert client.http.put(f"/acme/x509/ca/{new}/revoke", headers=admin(), body="{}").status_code == 200
    assert set(backend.keystore.deletions) == {"memory/acme/ca-key", secret}
    pem = renewed.public_bytes(serialization.Encoding.PEM)
    assert client.http.put("/acme/seacat/nginx_authenticate", headers=gateway, body=pem).status_code == 403
    assert client.http.get("/acme/x509/ca").status_code == 404
