"""OCSP on the AWS adapters (DynamoDB and Secrets Manager on moto): the status from the serial claim and
the certificate item, the delegated responder's key and certificate in a Secrets Manager secret of the
tenant, read back by another container, replaced in place when re-issued; a CA rotation's old CA
certificate still answered for, by its own responder."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from seacat_client.cr import build_cr
from tests.conftest import REFERENCE_SPEC, reset_caches

OCTET = {"Content-Type": "application/octet-stream"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def enrol(client: Any) -> x509.Certificate:
    r = client.http.put(
        "/acme/seacat/enroll", headers=OCTET, body=build_cr(ec.generate_private_key(ec.SECP256R1()), application="ocsp")
    )
    assert r.status_code == 200, r.body
    return x509.load_der_x509_certificate(r.body)


def ask(client: Any, cert: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPResponse:
    """Ask about ``cert``'s serial under ``issuer``'s name and key (the request a client builds)."""
    public = issuer.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        hashlib.sha1(issuer.subject.public_bytes()).digest(),
        hashlib.sha1(point).digest(),
        cert.serial_number,
        hashes.SHA1(),
    )
    der = builder.build().public_bytes(serialization.Encoding.DER)
    r = client.http.post("/acme/ocsp", headers={"Content-Type": "application/ocsp-request"}, body=der)
    assert r.status_code == 200
    response = ocsp.load_der_ocsp_response(r.body)
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    response.certificates[0].verify_directly_issued_by(issuer)
    return response


def test_ocsp_on_dynamodb_and_secrets_manager(client: Any, operator_token: str) -> None:
    assert client.http.put("/tenants/acme", headers=auth(operator_token), body="{}").status_code == 201
    r = client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC)
    assert r.status_code == 201, r.body
    old_id = r.json_body["ca_cert"].split(":")[1]
    old_ca = x509.load_pem_x509_certificate(r.json_body["certificate"].encode())
    cert = enrol(client)
    first = ask(client, cert, old_ca)
    assert first.certificate_status == ocsp.OCSPCertStatus.GOOD

    sm = boto3.client("secretsmanager", region_name="eu-west-1")
    stored = json.loads(
        bytes.fromhex(sm.get_secret_value(SecretId=f"seacat/test/acme/ocsp-signer-{old_id[:16]}")["SecretString"])
    )
    assert base64.b64decode(stored["certificate"]) == first.certificates[0].public_bytes(serialization.Encoding.DER)
    described = sm.describe_secret(SecretId=f"seacat/test/acme/ocsp-signer-{old_id[:16]}")
    assert {"Key": "seacat:tenant", "Value": "acme"} in described["Tags"]

    cid = hashlib.sha384(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    r = client.http.put(f"/acme/x509/cert/{cid}/revoke", headers=auth(operator_token), body='{"reason": "superseded"}')
    assert r.status_code == 200
    reset_caches()  # another container: the tenant, the responder and the key read from AWS again
    again = ask(client, cert, old_ca)
    assert again.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert again.revocation_reason == x509.ReasonFlags.superseded
    assert again.certificates[0] == first.certificates[0]  # the stored responder, not a new one

    # A rotation: the old CA certificate stays trusted and is still answered for, by its own responder.
    spec = json.loads(REFERENCE_SPEC)
    spec["subject"]["CN"] = "CA 2"
    r = client.http.post("/acme/x509/ca/rotate", headers=auth(operator_token), body=json.dumps(spec))
    assert r.status_code in (200, 201), r.body
    new_ca = x509.load_pem_x509_certificate(r.json_body["certificate"].encode())
    newer = enrol(client)
    assert ask(client, newer, new_ca).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert ask(client, newer, old_ca).certificate_status == ocsp.OCSPCertStatus.UNKNOWN  # not its issuer
    assert ask(client, cert, old_ca).certificates[0] == first.certificates[0]
