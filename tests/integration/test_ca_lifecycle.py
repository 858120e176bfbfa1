"""A tenant's CA lifecycle through the Chalice handlers on moto: rotation to a new key, renewals moving
onto it, retirement (refused while it covers certificates, unless forced), CA revocation, the bundle,
the CRLs, the key secrets scheduled for deletion, the view in GET /tenants/{tenant} and the metric."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from seacat_client.cr import build_cr
from tests.conftest import REFERENCE_SPEC

OCTET = {"Content-Type": "application/octet-stream"}
FIRST_SECRET = "seacat/test/acme/ca-key"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def spec(cn: str = "Root CA", **extra: Any) -> str:
    body = json.loads(REFERENCE_SPEC)
    body["subject"]["CN"] = cn
    body.update(extra)
    return json.dumps(body)


def enrol(client: Any, key: ec.EllipticCurvePrivateKey, status: int = 200) -> x509.Certificate:
    r = client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(key, application="ca-life"))
    assert r.status_code == status, r.body
    return x509.load_der_x509_certificate(r.body) if status == 200 else None  # type: ignore[return-value]


def authenticate(client: Any, cert: x509.Certificate) -> Any:
    return client.http.put(
        "/acme/seacat/nginx_authenticate",
        headers={"Content-Type": "text/plain", "X-SSL-Client-Verify": "SUCCESS"},
        body=cert.public_bytes(serialization.Encoding.PEM),
    )


def identity(cert: x509.Certificate) -> str:
    return str(cert.subject.rfc4514_string().removeprefix("CN="))


def der_id(cert: x509.Certificate) -> str:
    return hashlib.sha384(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def ski(cert: x509.Certificate) -> bytes:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def aki(cert: x509.Certificate) -> bytes | None:
    return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier


def bundle(client: Any) -> list[x509.Certificate]:
    r = client.http.get("/acme/x509/ca")
    assert r.status_code == 200, r.body
    return x509.load_pem_x509_certificates(r.body)


def view(client: Any, token: str) -> dict[str, Any]:
    r = client.http.get("/tenants/acme", headers=auth(token))
    assert r.status_code == 200, r.body
    return r.json_body  # type: ignore[no-any-return]


def states(client: Any, token: str) -> list[tuple[str, int]]:
    return [(ca["state"], ca["certificates"]) for ca in view(client, token)["cas"]]


def events(client: Any, token: str, kind: str) -> list[dict[str, Any]]:
    since = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = client.http.get(f"/audit?tenant=acme&type={kind}&from={since}", headers=auth(token))
    assert r.status_code == 200, r.body
    return r.json_body["items"]  # type: ignore[no-any-return]


def deletion_date(name: str) -> datetime | None:
    found = boto3.client("secretsmanager").describe_secret(SecretId=name)
    return found.get("DeletedDate")


@pytest.fixture
def acme(client: Any, operator_token: str) -> x509.Certificate:
    """A tenant with its first CA certificate (over its first key); returns that certificate."""
    body = json.dumps({"publicBaseUrl": "https://pki.example.com"})
    assert client.http.put("/tenants/acme", headers=auth(operator_token), body=body).status_code == 201
    r = client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=spec())
    assert r.status_code == 201, r.body
    return x509.load_pem_x509_certificate(r.json_body["certificate"].encode())


def rotate(client: Any, token: str, body: str | None = None, status: int = 201) -> Any:
    r = client.http.post("/acme/x509/ca/rotate", headers=auth(token), body=body or spec("Root CA 2"))
    assert r.status_code == status, r.body
    return r


def new_ca(r: Any) -> x509.Certificate:
    return x509.load_pem_x509_certificate(r.json_body["certificate"].encode())


# -- rotation -------------------------------------------------------------------------------------


def test_rotation_makes_a_new_key_and_moves_the_fleet_onto_it(
    client: Any, operator_token: str, acme: x509.Certificate
) -> None:
    old_client_key = ec.generate_private_key(ec.SECP256R1())
    old_cert = enrol(client, old_client_key)
    assert aki(old_cert) == ski(acme)
    first_fingerprint = view(client, operator_token)["keyFingerprint"]

    r = rotate(client, operator_token)
    new = new_ca(r)
    assert r.json_body["keyFingerprint"] != first_fingerprint
    assert new.public_key() != acme.public_key() and ski(new) != ski(acme)
    assert r.json_body["ca_cert"] == f"acme:{der_id(new)}" and isinstance(new.signature_hash_algorithm, hashes.SHA256)
    # the key is in a secret of its own, encrypted with the stage's KMS key; the first one stays
    secret = f"{FIRST_SECRET}-{r.json_body['keyFingerprint'][:16]}"
    described = boto3.client("secretsmanager").describe_secret(SecretId=secret)
    assert described["KmsKeyId"] == "alias/seacat-test" and "DeletedDate" not in described
    assert deletion_date(FIRST_SECRET) is None
    shown = view(client, operator_token)
    assert shown["keyFingerprint"] == first_fingerprint  # the tenant's first key
    assert [ca["keyFingerprint"] for ca in shown["cas"]] == [first_fingerprint, r.json_body["keyFingerprint"]]
    assert shown["activeCa"] == f"acme:{der_id(new)}"
    assert [ca["state"] for ca in shown["cas"]] == ["trusted", "active"]

    # the bundle holds both; the old client keeps passing
    assert bundle(client) == [acme, new]
    assert authenticate(client, old_cert).status_code == 200
    # a new enrolment chains to the new CA: AKI = the new CA's SKI, signed with its key
    fresh = enrol(client, ec.generate_private_key(ec.SECP256R1()))
    assert aki(fresh) == ski(new) and fresh.issuer == new.subject
    fresh.verify_directly_issued_by(new)
    cdp = fresh.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name == [x509.UniformResourceIdentifier(f"https://pki.example.com/acme/x509/crl/{der_id(new)}")]
    assert authenticate(client, fresh).status_code == 200

    # the old client renews at once, far outside its renewal window, onto the new CA ...
    renewed = enrol(client, old_client_key)
    assert renewed.serial_number != old_cert.serial_number and aki(renewed) == ski(new)
    renewed.verify_directly_issued_by(new)
    assert [e["subject"] for e in events(client, operator_token, "certificate.renewed")] == [der_id(renewed)]
    # ... once: its next PUT is a duplicate again
    again = enrol(client, old_client_key)
    assert again.serial_number == renewed.serial_number
    assert client.http.get(f"/acme/seacat/get/{identity(renewed)}").body == renewed.public_bytes(
        serialization.Encoding.DER
    )
    # the old CA still covers the old certificate (valid until it expires), the new one two
    assert states(client, operator_token) == [("trusted", 1), ("active", 2)]
    [created] = [e for e in events(client, operator_token, "ca.created") if e["details"].get("rotation")]
    assert created["subject"] == der_id(new) and created["details"]["previous"] == der_id(acme)
    assert created["details"]["secret"] == secret
    assert [e["subject"] for e in events(client, operator_token, "key.generated")][0] == r.json_body["keyFingerprint"]


def test_re_certifying_the_same_key_moves_no_client(client: Any, operator_token: str, acme: x509.Certificate) -> None:
    client_key = ec.generate_private_key(ec.SECP256R1())
    cert = enrol(client, client_key)
    r = client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=spec(serialNumber=2))
    assert r.status_code == 201
    recertified = new_ca(r)
    assert recertified.public_key() == acme.public_key() and recertified.subject == acme.subject
    assert enrol(client, client_key).serial_number == cert.serial_number  # not renewed early
    assert states(client, operator_token) == [("trusted", 1), ("active", 0)]
    # retiring the earlier certificate strands nobody: its clients chain to the newer one
    r = client.http.put(f"/acme/x509/ca/{der_id(acme)}/retire", headers=auth(operator_token), body="{}")
    assert r.status_code == 200, r.body
    assert r.json_body["certificatesRefused"] == 0 and r.json_body["keyDeletionScheduled"] is False
    assert authenticate(client, cert).status_code == 200
    assert deletion_date(FIRST_SECRET) is None  # the key is still the active one's
    # and a certificate under another name, over the same key, moves its clients
    assert (
        client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=spec("Renamed")).status_code == 201
    )
    moved = enrol(client, client_key)
    assert moved.serial_number != cert.serial_number and moved.issuer.rfc4514_string() == "CN=Renamed,O=My Org"


def test_rotation_with_p384_and_with_an_imported_key(client: Any, operator_token: str, acme: x509.Certificate) -> None:
    r = rotate(client, operator_token, spec("P-384 CA", curve="P-384"))
    p384 = new_ca(r)
    assert isinstance(p384.public_key(), ec.EllipticCurvePublicKey) and p384.public_key().curve.name == "secp384r1"
    assert isinstance(p384.signature_hash_algorithm, hashes.SHA384)
    issued = enrol(client, ec.generate_private_key(ec.SECP256R1()))
    issued.verify_directly_issued_by(p384)
    assert isinstance(issued.signature_hash_algorithm, hashes.SHA384)
    assert authenticate(client, issued).status_code == 200
    crl = x509.load_der_x509_crl(client.http.get("/acme/x509/crl").body)
    assert crl.is_signature_valid(p384.public_key()) and isinstance(crl.signature_hash_algorithm, hashes.SHA384)
    assert view(client, operator_token)["cas"][1]["curve"] == "P-384"

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    for body, field in (
        (spec(curve="P-521"), "curve"),
        (spec(curve="P-384", privateKey=pem), "curve"),  # the key is P-256
        (spec(privateKey="not a key"), "privateKey"),
        (json.dumps({"privateKey": pem}), "subject"),
    ):
        refused = rotate(client, operator_token, body, status=400)
        assert refused.json_body["field"] == field, refused.body
    imported = rotate(client, operator_token, spec("Imported", privateKey=pem))
    assert new_ca(imported).public_key() == key.public_key()
    assert events(client, operator_token, "key.imported")[0]["subject"] == imported.json_body["keyFingerprint"]
    again = rotate(client, operator_token, spec("Again", privateKey=pem), status=409)
    assert "already one of the tenant's CA keys" in again.json_body["message"]
    # nothing was left behind by the refusals: three keys, three secrets
    names = [s["Name"] for s in boto3.client("secretsmanager").list_secrets()["SecretList"]]
    assert sorted(n for n in names if n.startswith(FIRST_SECRET)) == sorted(
        [FIRST_SECRET]
        + [f"{FIRST_SECRET}-{fp[:16]}" for fp in (r.json_body["keyFingerprint"], imported.json_body["keyFingerprint"])]
    )


def test_rotation_needs_a_first_ca(client: Any, operator_token: str) -> None:
    assert client.http.put("/tenants/acme", headers=auth(operator_token), body="{}").status_code == 201
    r = rotate(client, operator_token, status=409)
    assert r.json_body["field"] == "tenant" and "self-signed" in r.json_body["message"]


# -- retirement -----------------------------------------------------------------------------------


def test_retirement_is_refused_while_it_covers_certificates_then_forced(
    client: Any, operator_token: str, acme: x509.Certificate
) -> None:
    old_cert = enrol(client, ec.generate_private_key(ec.SECP256R1()))
    revoked = enrol(client, ec.generate_private_key(ec.SECP256R1()))
    r = client.http.put(f"/acme/x509/cert/{der_id(revoked)}/revoke", headers=auth(operator_token), body="{}")
    assert r.status_code == 200
    new = new_ca(rotate(client, operator_token))
    old_id = der_id(acme)

    # the active one cannot be retired; the old one covers a certificate
    r = client.http.put(f"/acme/x509/ca/{der_id(new)}/retire", headers=auth(operator_token), body="{}")
    assert r.status_code == 409 and "rotate" in r.json_body["message"]
    r = client.http.put(f"/acme/x509/ca/acme:{old_id}/retire", headers=auth(operator_token), body="")
    assert r.status_code == 409 and r.json_body["field"] == "force"
    assert "still covers 1 unexpired, unrevoked client certificate" in r.json_body["message"]
    assert authenticate(client, old_cert).status_code == 200 and len(bundle(client)) == 2
    assert (
        client.http.put(
            f"/acme/x509/ca/{old_id}/retire", headers=auth(operator_token), body='{"force": "yes"}'
        ).json_body["field"]
        == "force"
    )

    r = client.http.put(f"/acme/x509/ca/{old_id}/retire", headers=auth(operator_token), body='{"force": true}')
    assert r.status_code == 200, r.body
    answer = r.json_body
    assert answer["changed"] == [f"acme:{old_id}"] and answer["certificatesRefused"] == 1
    assert answer["keyDeletionScheduled"] is True
    assert answer["ca"]["state"] == "retired" and answer["ca"]["stateChangedAt"]
    # out of the bundle and of the gateway's trust
    assert bundle(client) == [new]
    denied = authenticate(client, old_cert)
    assert denied.status_code == 403 and denied.body == b"issued by a retired CA certificate of this tenant\n"
    assert states(client, operator_token) == [("retired", 1), ("active", 0)]
    # the first key's secret is scheduled for deletion (30 days) and cannot be read any more
    deleted = deletion_date(FIRST_SECRET)
    assert deleted is not None and timedelta(days=29) < deleted - datetime.now(UTC) <= timedelta(days=30)
    with pytest.raises(Exception, match="marked"):
        boto3.client("secretsmanager").get_secret_value(SecretId=FIRST_SECRET)
    [scheduled] = events(client, operator_token, "key.deletion_scheduled")
    assert scheduled["details"] == {"secret": FIRST_SECRET, "recoveryWindowDays": 30}
    [retired_event] = events(client, operator_token, "ca.retired")
    assert retired_event["details"]["certificates"] == 1 and retired_event["details"]["forced"] is True

    # its CRL stays published: the final one, signed before the key went, until the CA itself expires
    from chalicelib import context

    context.current().caches.clear()  # a cold container: the key is not cached anywhere
    r = client.http.get(f"/acme/x509/crl/{old_id}")
    assert r.status_code == 200, r.body
    final = x509.load_der_x509_crl(r.body)
    assert final.issuer == acme.subject and final.is_signature_valid(acme.public_key())
    assert [e.serial_number for e in final] == [revoked.serial_number]
    assert final.next_update_utc == acme.not_valid_after_utc
    active_crl = x509.load_der_x509_crl(client.http.get("/acme/x509/crl").body)
    assert active_crl.issuer == new.subject and active_crl.is_signature_valid(new.public_key())
    assert list(active_crl) == []

    # idempotent: again, the same state, nothing changed
    r = client.http.put(f"/acme/x509/ca/{old_id}/retire", headers=auth(operator_token), body="{}")
    assert r.status_code == 200 and r.json_body["changed"] == [] and r.json_body["keyDeletionScheduled"] is True
    assert len(events(client, operator_token, "key.deletion_scheduled")) == 1
    # the active CA still issues, and a retired CA can only be left alone
    assert enrol(client, ec.generate_private_key(ec.SECP256R1())).issuer == new.subject
    r = client.http.put(f"/acme/x509/ca/{'0' * 96}/retire", headers=auth(operator_token), body="{}")
    assert r.status_code == 404 and r.json_body["field"] == "ca_id"
    r = client.http.put(f"/acme/x509/ca/{old_id}/retire", headers=auth(operator_token), body='{"forced": true}')
    assert r.status_code == 400 and r.json_body["field"] == "forced"


def test_retired_and_revoked_certificates_do_not_count_against_the_cap(
    client: Any, operator_token: str, acme: x509.Certificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.service import cas

    monkeypatch.setattr(cas, "MAX_CA_CERTIFICATES", 2)
    second = new_ca(rotate(client, operator_token))
    r = rotate(client, operator_token, spec("Root CA 3"), status=409)
    assert "at most 2 CA certificates in use" in r.json_body["message"]
    assert client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=spec()).status_code == 409
    r = client.http.put(f"/acme/x509/ca/{der_id(acme)}/retire", headers=auth(operator_token), body="{}")
    assert r.status_code == 200, r.body
    third = new_ca(rotate(client, operator_token, spec("Root CA 3")))
    r = client.http.put(f"/acme/x509/ca/{der_id(second)}/revoke", headers=auth(operator_token), body="{}")
    assert r.status_code == 200
    rotate(client, operator_token, spec("Root CA 4"))
    assert [ca["state"] for ca in view(client, operator_token)["cas"]] == ["retired", "revoked", "trusted", "active"]
    assert bundle(client)[0] == third


# -- revocation -----------------------------------------------------------------------------------


def test_a_revoked_ca_is_refused_everywhere_and_its_key_never_used_again(
    client: Any, operator_token: str, acme: x509.Certificate
) -> None:
    client_key = ec.generate_private_key(ec.SECP256R1())
    old_cert = enrol(client, client_key)
    # a re-certification of the same key: revoking the key revokes both
    recertified = new_ca(
        client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=spec(serialNumber=2))
    )
    rotated = rotate(client, operator_token)
    new = new_ca(rotated)
    other_cert = enrol(client, ec.generate_private_key(ec.SECP256R1()))
    assert authenticate(client, old_cert).status_code == 200

    r = client.http.put(f"/acme/x509/ca/{der_id(acme)}/revoke", headers=auth(operator_token), body="")
    assert r.status_code == 200, r.body
    assert sorted(r.json_body["changed"]) == sorted([f"acme:{der_id(acme)}", f"acme:{der_id(recertified)}"])
    assert r.json_body["certificatesRefused"] == 1 and r.json_body["keyDeletionScheduled"] is True
    assert [ca["state"] for ca in view(client, operator_token)["cas"]] == ["revoked", "revoked", "active"]
    assert bundle(client) == [new]
    # every certificate it issued is refused: the gateway, /get ...
    denied = authenticate(client, old_cert)
    assert denied.status_code == 403 and denied.body == b"issued by a revoked CA certificate of this tenant\n"
    assert client.http.get(f"/acme/seacat/get/{identity(old_cert)}").status_code == 404
    assert authenticate(client, other_cert).status_code == 200
    # ... and a renewal never answers with it: the client gets a new certificate from the active CA
    renewed = enrol(client, client_key)
    assert aki(renewed) == ski(new) and authenticate(client, renewed).status_code == 200
    assert client.http.get(f"/acme/seacat/get/{identity(old_cert)}").status_code == 200
    # no CRL under a compromised key
    r = client.http.get(f"/acme/x509/crl/{der_id(acme)}")
    assert r.status_code == 404 and "revoked" in r.json_body["message"]
    # the audit trail, one event per CA certificate, and the key's deletion
    revoked_events = events(client, operator_token, "ca.revoked")
    assert sorted(e["subject"] for e in revoked_events) == sorted([der_id(acme), der_id(recertified)])
    assert {e["details"]["reason"] for e in revoked_events} == {"cACompromise"}
    assert deletion_date(FIRST_SECRET) is not None
    # idempotent; and a revoked CA certificate is not retired
    r = client.http.put(f"/acme/x509/ca/{der_id(recertified)}/revoke", headers=auth(operator_token), body="{}")
    assert r.status_code == 200 and r.json_body["changed"] == []
    assert (
        client.http.put(
            f"/acme/x509/ca/{der_id(acme)}/retire", headers=auth(operator_token), body='{"force": true}'
        ).status_code
        == 409
    )


def test_revoking_the_active_ca_stops_issuing_until_a_rotation(
    client: Any, operator_token: str, acme: x509.Certificate
) -> None:
    from chalicelib.ca import keys

    key = keys.generate_ca_key()
    pem = keys.private_key_to_pem(key).decode()
    imported = rotate(client, operator_token, spec("Imported", privateKey=pem))
    r = client.http.put(
        f"/acme/x509/ca/{imported.json_body['_id']}/revoke",
        headers=auth(operator_token),
        body='{"reason": "keyCompromise"}',
    )
    assert r.status_code == 200
    assert view(client, operator_token)["activeCa"] is None
    enrol(client, ec.generate_private_key(ec.SECP256R1()), status=404)
    assert client.http.get("/acme/x509/crl").status_code == 404
    assert bundle(client) == [acme]  # the first CA certificate is still trusted
    # re-certification has no active key to use; importing the revoked key is refused
    r = client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=spec())
    assert r.status_code == 409 and "rotate" in r.json_body["message"]
    r = rotate(client, operator_token, spec("Again", privateKey=pem), status=409)
    assert "revoked key is never used again" in r.json_body["message"]
    assert events(client, operator_token, "ca.revoked")[0]["details"]["reason"] == "keyCompromise"
    # a rotation brings the tenant back
    new = new_ca(rotate(client, operator_token, spec("Root CA 3")))
    assert enrol(client, ec.generate_private_key(ec.SECP256R1())).issuer == new.subject


def test_revoking_every_ca_empties_the_bundle(client: Any, operator_token: str, acme: x509.Certificate) -> None:
    cert = enrol(client, ec.generate_private_key(ec.SECP256R1()))
    r = client.http.put(f"/acme/x509/ca/{der_id(acme)}/revoke", headers=auth(operator_token), body="{}")
    assert r.status_code == 200
    assert client.http.get("/acme/x509/ca").status_code == 404
    denied = authenticate(client, cert)
    assert denied.status_code == 403 and b"revoked CA" in denied.body


# -- what GET /tenants shows, the metric, old items ------------------------------------------------


def test_get_tenant_shows_each_ca_with_its_state_expiry_and_certificates(
    client: Any, operator_token: str, acme: x509.Certificate
) -> None:
    for _ in range(3):
        enrol(client, ec.generate_private_key(ec.SECP256R1()))
    shown = view(client, operator_token)
    [ca] = shown["cas"]
    assert ca["id"] == f"acme:{der_id(acme)}" and ca["state"] == "active" and ca["certificates"] == 3
    assert ca["subject"] == "CN=Root CA,O=My Org" and ca["curve"] == "P-256"
    assert ca["keyFingerprint"] == shown["keyFingerprint"] and ca["stateChangedAt"] is None
    assert ca["daysToExpiry"] == (acme.not_valid_after_utc - datetime.now(UTC)).days
    # PUT answers the configuration only
    put = client.http.put("/tenants/acme", headers=auth(operator_token), body="{}").json_body
    assert "cas" not in put and put["caCertificates"] == shown["caCertificates"]


def test_the_active_ca_days_left_metric_is_emitted_once_an_hour_per_container(
    client: Any, operator_token: str, acme: x509.Certificate
) -> None:
    from chalicelib import context, observability

    lines: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(observability.JsonFormatter(stage="test").format(record)))

    def days_left() -> list[tuple[str, int]]:
        return [(line["Tenant"], line["ActiveCaDaysLeft"]) for line in lines if "ActiveCaDaysLeft" in line]

    collector = Collect()
    logging.getLogger("seacat").addHandler(collector)
    try:
        cert = enrol(client, ec.generate_private_key(ec.SECP256R1()))
        expected = (acme.not_valid_after_utc - datetime.now(UTC)).days
        assert days_left() == [("acme", expected)]
        [directive] = [
            d
            for line in lines
            if "ActiveCaDaysLeft" in line
            for d in line["_aws"]["CloudWatchMetrics"]
            if d["Metrics"][0]["Name"] == "ActiveCaDaysLeft"
        ]
        assert directive["Dimensions"] == [["Stage", "Tenant"]] and directive["Metrics"][0]["Unit"] == "None"
        enrol(client, ec.generate_private_key(ec.SECP256R1()))
        assert authenticate(client, cert).status_code == 200
        assert len(days_left()) == 1  # within the hour: not again
        context.current().caches.ca_expiry_noted.clear()  # an hour later (or another container)
        assert authenticate(client, cert).status_code == 200  # the gateway's path emits it too
        assert days_left() == [("acme", expected)] * 2
    finally:
        logging.getLogger("seacat").removeHandler(collector)


def test_tenant_items_written_before_rotation_read_as_before(
    client: Any, operator_token: str, acme: x509.Certificate
) -> None:
    """A CA entry without key_secret and state (as every tenant item had them): trusted, over the
    tenant's key; the one active_ca names is active and issues with that key."""
    recertified = new_ca(
        client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=spec(serialNumber=2))
    )
    ddb = boto3.client("dynamodb")
    item = ddb.get_item(TableName="seacat-test-tenants", Key={"tenant_id": {"S": "acme"}})["Item"]
    for entry in item["cas"]["L"]:
        for name in ("key_secret", "state", "state_at"):
            entry["M"].pop(name, None)
    ddb.put_item(TableName="seacat-test-tenants", Item=item)
    assert [ca["state"] for ca in view(client, operator_token)["cas"]] == ["trusted", "active"]
    cert = enrol(client, ec.generate_private_key(ec.SECP256R1()))
    cert.verify_directly_issued_by(recertified)
    assert authenticate(client, cert).status_code == 200
    assert bundle(client) == [acme, recertified]


# -- failures on the way ---------------------------------------------------------------------------


def test_a_key_deletion_that_fails_is_completed_by_retiring_again(
    client: Any, operator_token: str, acme: x509.Certificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import context
    from chalicelib.errors import Unavailable

    rotate(client, operator_token)
    keystore = context.current().keystore
    real = keystore.schedule_deletion

    def down(name: str, days: int) -> bool:
        raise Unavailable("the key store is not available")

    monkeypatch.setattr(keystore, "schedule_deletion", down)
    retire = f"/acme/x509/ca/{der_id(acme)}/retire"
    r = client.http.put(retire, headers=auth(operator_token), body="{}")
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert view(client, operator_token)["cas"][0]["state"] == "retired"  # the retirement stands
    assert deletion_date(FIRST_SECRET) is None
    monkeypatch.setattr(keystore, "schedule_deletion", real)
    r = client.http.put(retire, headers=auth(operator_token), body="{}")
    assert r.status_code == 200 and r.json_body["changed"] == [] and r.json_body["keyDeletionScheduled"] is True
    assert deletion_date(FIRST_SECRET) is not None
    assert len(events(client, operator_token, "key.deletion_scheduled")) == 1


def test_a_final_crl_too_large_to_store_keeps_the_key(
    client: Any, operator_token: str, acme: x509.Certificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.service import cas

    monkeypatch.setattr(cas, "MAX_FINAL_CRL", 10)
    rotate(client, operator_token)
    r = client.http.put(f"/acme/x509/ca/{der_id(acme)}/retire", headers=auth(operator_token), body="{}")
    assert r.status_code == 200 and r.json_body["keyDeletionScheduled"] is False
    assert deletion_date(FIRST_SECRET) is None
    revoked = enrol(client, ec.generate_private_key(ec.SECP256R1()))  # (by the new CA: not in the old CRL)
    assert (
        client.http.put(
            f"/acme/x509/cert/{der_id(revoked)}/revoke", headers=auth(operator_token), body="{}"
        ).status_code
        == 200
    )
    crl = x509.load_der_x509_crl(client.http.get(f"/acme/x509/crl/{der_id(acme)}").body)  # signed on demand
    assert crl.is_signature_valid(acme.public_key()) and list(crl) == []
    assert crl.next_update_utc is not None and crl.next_update_utc - datetime.now(UTC) <= timedelta(days=1)


def test_a_refused_rotation_leaves_no_secret_behind(
    client: Any, operator_token: str, acme: x509.Certificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import context
    from chalicelib.errors import Conflict

    def raced(*args: Any, **kwargs: Any) -> None:
        raise Conflict("tenant acme was changed concurrently, retry")

    monkeypatch.setattr(context.current().tenants, "add_ca", raced)
    r = rotate(client, operator_token, status=409)
    assert "concurrently" in r.json_body["message"]
    made = [
        s
        for s in boto3.client("secretsmanager").list_secrets(IncludePlannedDeletion=True)["SecretList"]
        if s["Name"].startswith(FIRST_SECRET + "-")
    ]
    assert len(made) == 1 and made[0].get("DeletedDate") is not None
    assert [ca["state"] for ca in view(client, operator_token)["cas"]] == ["active"]
