"""SeaCat enrolment through the Chalice handlers on moto: issuance, duplicates, renewal, approval."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from seacat_client.cr import build_cr
from tests.approve_hook import Hook
from tests.conftest import REFERENCE_SPEC, VECTORS

OCTET = {"Content-Type": "application/octet-stream"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def identity_of(key: ec.EllipticCurvePrivateKey) -> str:
    import base64

    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.b32encode(hashlib.sha384(point).digest()).decode()[:16]


@pytest.fixture
def tenant(client: Any, operator_token: str) -> dict[str, Any]:
    r = client.http.put("/tenants/acme", headers=auth(operator_token), body="{}")
    assert r.status_code == 201
    ca = client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC)
    assert ca.status_code == 201
    return {"name": "acme", "ca_pem": ca.json_body["certificate"], "ca_id": ca.json_body["_id"]}


def configure(client: Any, token: str, **config: Any) -> None:
    r = client.http.put("/tenants/acme", headers=auth(token), body=json.dumps(config))
    assert r.status_code == 200, r.body


def enroll(client: Any, cr: bytes, headers: dict[str, str] | None = None) -> Any:
    return client.http.put("/acme/seacat/enroll", headers={**OCTET, **(headers or {})}, body=cr)


def test_enrol_returns_der_certificate_with_the_client_profile(
    client: Any, tenant: dict[str, Any], operator_token: str, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    before = datetime.now(UTC)
    r = enroll(client, build_cr(key, application="com.example.app"))  # no Accept header, like iOS/Android
    after = datetime.now(UTC)
    assert r.status_code == 200, r.body
    assert r.headers["Content-Type"] == "application/pkix-cert"
    cert = x509.load_der_x509_certificate(r.body)
    identity = identity_of(key)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == identity
    assert cert.public_key() == key.public_key()
    ca = x509.load_pem_x509_certificate(tenant["ca_pem"].encode())
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    assert cert.serial_number >= 2**63
    # backdated one hour from the server's clock, which read between `before` and `after`;
    # X.509 times carry whole seconds, so the lower bound drops the microseconds
    backdated = cert.not_valid_before_utc + timedelta(hours=1)
    assert before.replace(microsecond=0) <= backdated <= after
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=365)
    assert b"\x17\x0d" in r.body  # UTCTime validity
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)

    (tmp_path / "ca.pem").write_text(tenant["ca_pem"])
    (tmp_path / "leaf.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    verify = subprocess.run(
        ["openssl", "verify", "-purpose", "sslclient", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "leaf.pem")],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # stored, and served by id and by identity
    cert_id = hashlib.sha384(r.body).hexdigest()
    meta = client.http.get(f"/acme/x509/cert/{cert_id}", headers=auth(operator_token))
    assert meta.status_code == 200 and meta.json_body["seacat_identity"] == identity
    assert meta.json_body["family"] == "seacat"
    got = client.http.get(f"/acme/seacat/get/{identity}")
    assert got.status_code == 200 and got.body == r.body
    assert client.http.get("/acme/seacat/get/AAAAAAAAAAAAAAAA").status_code == 404
    assert client.http.get("/acme/seacat/get/not-an-identity").status_code == 400
    listed = client.http.get(f"/acme/seacat/identity/{identity}/certificates", headers=auth(operator_token))
    assert [c["_id"] for c in listed.json_body["items"]] == [cert_id]


def test_accept_star_and_the_real_android_sample(client: Any, tenant: dict[str, Any]) -> None:
    sample = next(v for v in VECTORS["cr_vectors"] if v["name"] == "sample_cr")
    r = enroll(client, bytes.fromhex(sample["der_hex"]), {"Accept": "*/*"})
    assert r.status_code == 200, r.body
    cert = x509.load_der_x509_certificate(r.body)
    assert cert.subject.rfc4514_string() == "CN=HDKXPDREZADFK4G2"


def test_all_vectors_enrol(client: Any, tenant: dict[str, Any]) -> None:
    for vector in VECTORS["cr_vectors"]:
        r = enroll(client, bytes.fromhex(vector["der_hex"]))
        assert r.status_code == 200, (vector["name"], r.body)
        cn = x509.load_der_x509_certificate(r.body).subject.rfc4514_string()
        assert cn == f"CN={vector['expected']['identity']}"


def test_duplicate_put_returns_the_same_certificate(client: Any, tenant: dict[str, Any], operator_token: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    first = enroll(client, build_cr(key, application="a"))
    second = enroll(client, build_cr(key, application="a"))
    assert first.status_code == second.status_code == 200
    assert first.body == second.body
    identity = identity_of(key)
    listed = client.http.get(f"/acme/seacat/identity/{identity}/certificates", headers=auth(operator_token))
    assert listed.json_body["count"] == 1


def test_renewal_inside_the_window_issues_a_later_certificate(
    aws: None, operator_token: str, client: Any, tenant: dict[str, Any]
) -> None:
    from chalicelib.service import enrollment

    key = ec.generate_private_key(ec.SECP256R1())
    first = x509.load_der_x509_certificate(enroll(client, build_cr(key, application="a")).body)
    # outside the window (half-life not reached): the same certificate
    early = first.not_valid_before_utc + timedelta(days=100)
    same = enrollment.enroll("acme", build_cr(key, application="a"), now=early)
    assert same.outcome == "existing" and same.der == first.public_bytes(serialization.Encoding.DER)
    # past the half-life: a renewal with a later notAfter, itself outside the window
    late = first.not_valid_before_utc + timedelta(days=200)
    renewed = enrollment.enroll("acme", build_cr(key, application="a"), now=late)
    assert renewed.outcome == "renewed" and renewed.der is not None
    new = x509.load_der_x509_certificate(renewed.der)
    assert new.not_valid_after_utc > first.not_valid_after_utc
    assert new.public_key() == key.public_key() and new.serial_number != first.serial_number
    # the renewal is now what /get serves, and both are listed, newest first
    assert client.http.get(f"/acme/seacat/get/{identity_of(key)}").body == renewed.der
    listed = client.http.get(f"/acme/seacat/identity/{identity_of(key)}/certificates", headers=auth(operator_token))
    assert listed.json_body["count"] == 2
    assert listed.json_body["items"][0]["_id"] == hashlib.sha384(renewed.der).hexdigest()


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "signature"),
        (lambda b: b[:3] + b"\x30" + b[4:], ""),
        (lambda b: b[:20], ""),
        (lambda b: b"", ""),
        (lambda b: b"garbage", ""),
    ],
)
def test_bad_crs_get_400_with_a_reason(client: Any, tenant: dict[str, Any], mutate: Any, reason: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    r = enroll(client, mutate(build_cr(key, application="a")))
    assert r.status_code == 400
    assert r.body.strip() and reason in r.body.decode()


def test_oversized_cr_is_refused(client: Any, tenant: dict[str, Any]) -> None:
    r = enroll(client, b"\x30" * (16 * 1024 + 1))
    assert r.status_code == 413


def test_routes_404_without_seacat_or_ca(client: Any, operator_token: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cr = build_cr(key, application="a")
    assert client.http.put("/nobody/seacat/enroll", headers=OCTET, body=cr).status_code == 404
    client.http.put("/tenants/noca", headers=auth(operator_token), body="{}")
    assert client.http.put("/noca/seacat/enroll", headers=OCTET, body=cr).status_code == 404
    client.http.put("/tenants/off", headers=auth(operator_token), body='{"seacat": false}')
    client.http.put("/off/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC)
    assert client.http.put("/off/seacat/enroll", headers=OCTET, body=cr).status_code == 404


def test_lifetime_is_per_tenant(client: Any, tenant: dict[str, Any], operator_token: str) -> None:
    configure(client, operator_token, lifetimeDays=90)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = x509.load_der_x509_certificate(enroll(client, build_cr(key, application="a")).body)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=90)


def test_blocked_identity_cannot_enrol_or_renew(client: Any, tenant: dict[str, Any], operator_token: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    identity = identity_of(key)
    assert enroll(client, build_cr(key, application="a")).status_code == 200
    r = client.http.put(f"/acme/seacat/identity/{identity}/block", headers=auth(operator_token))
    assert r.status_code == 200 and r.json_body["blocked"] is True
    assert enroll(client, build_cr(key, application="a")).status_code == 403
    assert client.http.get(f"/acme/seacat/get/{identity}").status_code == 404
    # blocking before first contact works too
    other = ec.generate_private_key(ec.SECP256R1())
    client.http.put(f"/acme/seacat/identity/{identity_of(other)}/block", headers=auth(operator_token))
    assert enroll(client, build_cr(other, application="a")).status_code == 403
    client.http.put(f"/acme/seacat/identity/{identity}/unblock", headers=auth(operator_token))
    assert enroll(client, build_cr(key, application="a")).status_code == 200


def test_manual_approval_round_trip(client: Any, tenant: dict[str, Any], operator_token: str) -> None:
    configure(client, operator_token, manualApproval=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cr = build_cr(key, application="com.example.manual", attributes=[("OS", "Linux")])
    r = enroll(client, cr)
    assert r.status_code == 202
    assert r.json_body["result"] == "PENDING"
    cr_id = r.json_body["id"]
    assert cr_id == hashlib.sha384(cr).hexdigest()
    # a second PUT while pending: still pending, still one request
    assert enroll(client, cr).status_code == 202

    pending = client.http.get("/acme/seacat/cr?state=pending", headers=auth(operator_token))
    assert pending.status_code == 200
    assert [i["_id"] for i in pending.json_body["items"]] == [cr_id]
    item = pending.json_body["items"][0]
    assert item["seacat_identity"] == identity_of(key)
    assert item["label"] == f"{identity_of(key)} (com.example.manual)"
    assert item["data"] == cr.hex() and item["state"] == "pending"
    assert client.http.get(f"/acme/seacat/cr/{cr_id}", headers=auth(operator_token)).json_body["type"] == "cr"

    approved = client.http.put(f"/acme/seacat/cr/{cr_id}/approve", headers=auth(operator_token))
    assert approved.status_code == 200 and approved.json_body["request"]["state"] == "approved"
    assert approved.json_body["identity"]["approved"] is True
    assert client.http.get("/acme/seacat/cr?state=pending", headers=auth(operator_token)).json_body["items"] == []
    # the client's next PUT with the same key (a new CR) gets its certificate
    r = enroll(client, build_cr(key, application="com.example.manual"))
    assert r.status_code == 200
    assert x509.load_der_x509_certificate(r.body).public_key() == key.public_key()
    # deciding again the other way is a conflict; the same way is idempotent
    assert client.http.put(f"/acme/seacat/cr/{cr_id}/reject", headers=auth(operator_token)).status_code == 409
    assert client.http.put(f"/acme/seacat/cr/{cr_id}/approve", headers=auth(operator_token)).status_code == 200


def test_manual_rejection(client: Any, tenant: dict[str, Any], operator_token: str) -> None:
    configure(client, operator_token, manualApproval=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cr = build_cr(key, application="a")
    cr_id = enroll(client, cr).json_body["id"]
    r = client.http.put(f"/acme/seacat/cr/{cr_id}/reject", headers=auth(operator_token))
    assert r.status_code == 200 and r.json_body["request"]["state"] == "rejected"
    assert enroll(client, cr).status_code == 403
    assert client.http.get(f"/acme/seacat/get/{identity_of(key)}").status_code == 404


def test_pending_list_is_paginated_and_validated(client: Any, tenant: dict[str, Any], operator_token: str) -> None:
    configure(client, operator_token, manualApproval=True)
    ids = {
        enroll(client, build_cr(ec.generate_private_key(ec.SECP256R1()), application="a")).json_body["id"]
        for _ in range(5)
    }
    seen: list[str] = []
    url = "/acme/seacat/cr?state=pending&limit=2"
    for _ in range(10):
        page = client.http.get(url, headers=auth(operator_token)).json_body
        seen += [i["_id"] for i in page["items"]]
        if not page["next"]:
            break
        url = f"/acme/seacat/cr?state=pending&limit=2&next={page['next']}"
    assert sorted(seen) == sorted(ids)
    assert client.http.get("/acme/seacat/cr?state=pending&limit=0", headers=auth(operator_token)).status_code == 400
    assert client.http.get("/acme/seacat/cr?state=issued", headers=auth(operator_token)).status_code == 400
    assert client.http.get("/acme/seacat/cr?next=@@@", headers=auth(operator_token)).status_code == 400


# -- the approve webhook, against a real HTTP server on 127.0.0.1 -----------------------------------


# Each mode's answer: (status, body); "slow" answers only after the service's timeout.
_ANSWERS = {
    "ok": (200, b'{"result": "OK"}'),
    "refuse": (200, b'{"result": "NO"}'),
    "garbage": (200, b"<html>ok</html>"),
    "error": (500, b'{"result": "OK"}'),
    "slow": (200, b'{"result": "OK"}'),
}


class Webhook(Hook):
    """The approve webhook, answering as its ``mode`` says at the time of each request."""

    def __init__(self) -> None:
        self.mode = "ok"
        super().__init__(self._answer)

    def _answer(self) -> tuple[int, bytes]:
        if self.mode == "slow":
            time.sleep(1.5)
        return _ANSWERS[self.mode]

    @property
    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.mark.parametrize(
    "mode, status, state",
    [
        ("ok", 200, "issued"),
        ("refuse", 403, "rejected"),
        ("garbage", 403, "rejected"),
        ("error", 503, "failed"),
        ("slow", 503, "failed"),
    ],
)
def test_webhook(
    client: Any, tenant: dict[str, Any], operator_token: str, webhook: Webhook, mode: str, status: int, state: str
) -> None:
    configure(client, operator_token, approve=webhook.url, webhookTimeout=0.5)
    webhook.mode = mode
    key = ec.generate_private_key(ec.SECP256R1())
    cr = build_cr(key, application="com.example.hook", attributes=[("OS", "android")])
    r = enroll(client, cr)
    assert r.status_code == status, r.body
    if status == 503:
        assert "Retry-After" in r.headers
    payload = webhook.payloads[-1]
    identity = identity_of(key)
    assert payload["data"] == cr.hex()
    assert payload["seacat_identity"] == identity and payload["info"]["identity"] == identity
    assert payload["seacat_application"] == "com.example.hook" == payload["info"]["application"]
    assert payload["label"] == f"{identity} (com.example.hook)"
    assert payload["family"] == "seacat" and payload["type"] == "cr" and payload["tenant"] == "acme"
    assert payload["_id"] == hashlib.sha384(cr).hexdigest() and payload["_v"] == 1
    assert payload["info"]["OS"] == "android"
    recorded = client.http.get(f"/acme/seacat/cr/{payload['_id']}", headers=auth(operator_token)).json_body
    assert recorded["state"] == state


def test_webhook_unreachable_fails_closed(client: Any, tenant: dict[str, Any], operator_token: str) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    configure(client, operator_token, approve=f"http://127.0.0.1:{port}/hook")
    r = enroll(client, build_cr(ec.generate_private_key(ec.SECP256R1()), application="a"))
    assert r.status_code == 503


def test_renewals_skip_the_webhook_unless_asked(
    aws: None, client: Any, tenant: dict[str, Any], operator_token: str, webhook: Webhook
) -> None:
    from chalicelib.service import enrollment

    configure(client, operator_token, approve=webhook.url)
    key = ec.generate_private_key(ec.SECP256R1())
    first = x509.load_der_x509_certificate(enroll(client, build_cr(key, application="a")).body)
    assert len(webhook.received) == 1
    webhook.mode = "refuse"
    late = first.not_valid_before_utc + timedelta(days=200)
    assert enrollment.enroll("acme", build_cr(key, application="a"), now=late).outcome == "renewed"
    assert len(webhook.received) == 1
    configure(client, operator_token, approveRenewals=True)
    from chalicelib.errors import Forbidden

    with pytest.raises(Forbidden):
        enrollment.enroll("acme", build_cr(key, application="a"), now=late + timedelta(days=200))
    assert len(webhook.received) == 2


def test_near_the_ca_expiry_the_current_certificate_stands(client: Any, operator_token: str) -> None:
    """When the CA's expiry caps notAfter, a new certificate would not outlive the current one:
    the clients' renewal rule must not turn every PUT into a new certificate."""
    spec = json.loads(REFERENCE_SPEC)
    spec["validity"]["notAfter"] = {"days": 20}
    assert client.http.put("/tenants/short", headers=auth(operator_token), body="{}").status_code == 201
    assert (
        client.http.put("/short/x509/self-signed", headers=auth(operator_token), body=json.dumps(spec)).status_code
        == 201
    )
    key = ec.generate_private_key(ec.SECP256R1())
    answers = [
        client.http.put("/short/seacat/enroll", headers=OCTET, body=build_cr(key, application="a")) for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len({a.body for a in answers}) == 1
    cert = x509.load_der_x509_certificate(answers[0].body)
    ca = x509.load_pem_x509_certificate(client.http.get("/short/x509/ca").body)
    assert cert.not_valid_after_utc == ca.not_valid_after_utc
    listed = client.http.get(f"/short/seacat/identity/{identity_of(key)}/certificates", headers=auth(operator_token))
    assert listed.json_body["count"] == 1


def test_a_refused_resend_keeps_the_record_of_an_issued_cr(
    client: Any, tenant: dict[str, Any], operator_token: str
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cr = build_cr(key, application="a")
    issued = enroll(client, cr)
    assert issued.status_code == 200
    identity = identity_of(key)
    cr_id = hashlib.sha384(cr).hexdigest()
    assert client.http.put(f"/acme/seacat/identity/{identity}/block", headers=auth(operator_token)).status_code == 200
    assert enroll(client, cr).status_code == 403  # the same CR again, now blocked
    meta = client.http.get(f"/acme/seacat/cr/{cr_id}", headers=auth(operator_token)).json_body
    assert meta["state"] == "issued" and meta["certificate"].startswith("acme:")
    events = client.http.get("/audit?tenant=acme&type=cr.rejected", headers=auth(operator_token)).json_body
    assert any(e["subject"] == cr_id for e in events["items"])
