"""CRLs per CA name: after a new CA certificate under another name becomes active, the certificates of
the old one stay covered by a CRL that names their issuer (RFC 5280 §5), which their CRL distribution
point names."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from seacat_client.cr import build_cr
from tests.conftest import REFERENCE_SPEC

OCTET = {"Content-Type": "application/octet-stream"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def new_ca(client: Any, token: str, cn: str) -> tuple[str, x509.Certificate]:
    spec = json.loads(REFERENCE_SPEC)
    spec["subject"]["CN"] = cn
    r = client.http.put("/acme/x509/self-signed", headers=auth(token), body=json.dumps(spec))
    assert r.status_code == 201, r.body
    return r.json_body["ca_cert"].split(":")[1], x509.load_pem_x509_certificate(r.json_body["certificate"].encode())


def enrol(client: Any) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    r = client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(key, application="crl"))
    assert r.status_code == 200, r.body
    return x509.load_der_x509_certificate(r.body)


def revoke(client: Any, token: str, cert: x509.Certificate) -> None:
    cid = hashlib.sha384(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    r = client.http.put(f"/acme/x509/cert/{cid}/revoke", headers=auth(token), body='{"reason": "keyCompromise"}')
    assert r.status_code == 200 and r.json_body["status"] == "revoked"


def crl(client: Any, path: str) -> x509.CertificateRevocationList:
    r = client.http.get(path)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/pkix-crl", r.body
    return x509.load_der_x509_crl(r.body)


@pytest.fixture
def acme(client: Any, operator_token: str) -> None:
    body = json.dumps({"publicBaseUrl": "https://pki.example.com"})
    assert client.http.put("/tenants/acme", headers=auth(operator_token), body=body).status_code == 201


def test_each_ca_name_has_its_crl_and_certificates_point_to_theirs(
    client: Any, operator_token: str, acme: None
) -> None:
    old_id, old_ca = new_ca(client, operator_token, "Root CA")
    first = enrol(client)
    cdp = first.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name == [x509.UniformResourceIdentifier(f"https://pki.example.com/acme/x509/crl/{old_id}")]
    new_id, new_ca_cert = new_ca(client, operator_token, "Root CA 2")  # another name becomes active
    second = enrol(client)
    assert second.issuer == new_ca_cert.subject
    revoke(client, operator_token, first)
    revoke(client, operator_token, second)

    under_old = crl(client, f"/acme/x509/crl/{old_id}")
    assert under_old.issuer == old_ca.subject and under_old.is_signature_valid(old_ca.public_key())
    assert {e.serial_number for e in under_old} == {first.serial_number}
    under_new = crl(client, "/acme/x509/crl")  # the active CA's
    assert under_new.issuer == new_ca_cert.subject
    assert {e.serial_number for e in under_new} == {second.serial_number}
    assert crl(client, f"/acme/x509/crl/acme:{new_id}").issuer == new_ca_cert.subject
    # the AKI of every CRL is the tenant key's, as in every certificate
    aki = under_old.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == old_ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def test_a_ca_under_the_same_name_shares_the_crl(client: Any, operator_token: str, acme: None) -> None:
    old_id, _ = new_ca(client, operator_token, "Root CA")
    first = enrol(client)
    new_ca(client, operator_token, "Root CA")  # renewed under the same name
    second = enrol(client)
    revoke(client, operator_token, first)
    revoke(client, operator_token, second)
    for path in ("/acme/x509/crl", f"/acme/x509/crl/{old_id}"):
        assert {e.serial_number for e in crl(client, path)} == {first.serial_number, second.serial_number}


def test_crl_of_an_unknown_or_malformed_ca(client: Any, operator_token: str, acme: None) -> None:
    new_ca(client, operator_token, "Root CA")
    r = client.http.get(f"/acme/x509/crl/{'0' * 96}")
    assert r.status_code == 404 and r.json_body["field"] == "ca_id"
    r = client.http.get("/acme/x509/crl/xyz")
    assert r.status_code == 400 and r.json_body["field"] == "ca_id"
    assert client.http.get(f"/other/x509/crl/{'0' * 96}").status_code == 404
