"""The OCSP responder on the in-memory context, through the app's routes: statuses by issuer and serial,
the delegated responder certificate, the nonce, caching headers, error statuses, the storage calls."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from seacat_client.cr import build_cr
from tests.conftest import REFERENCE_SPEC, memory_client

TOKEN = "sct_00000000000000bc_ocsp-operator-token-0123456789ab"
OCTET = {"Content-Type": "application/octet-stream"}
POST = {"Content-Type": "application/ocsp-request"}


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with memory_client(monkeypatch, TOKEN, SEACAT_OCSP_VALIDITY_SECONDS="120") as (client, backend):
        yield client, backend


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def make_tenant(client: Any, tenant: str, config: dict[str, object] | None = None) -> x509.Certificate:
    assert client.http.put(f"/tenants/{tenant}", headers=admin(), body=json.dumps(config or {})).status_code == 201
    r = client.http.put(f"/{tenant}/x509/self-signed", headers=admin(), body=REFERENCE_SPEC)
    assert r.status_code == 201, r.body
    bundle = client.http.get(f"/{tenant}/x509/ca", headers={"Accept": "application/x-pem-file"}).body
    return x509.load_pem_x509_certificates(bundle)[-1]


def enrol(client: Any, tenant: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    r = client.http.put(f"/{tenant}/seacat/enroll", headers=OCTET, body=build_cr(key, application="m"))
    assert r.status_code == 200, r.body
    return x509.load_der_x509_certificate(r.body)


def request_der(cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def post(client: Any, tenant: str, der: bytes) -> tuple[Any, ocsp.OCSPResponse]:
    r = client.http.post(f"/{tenant}/ocsp", headers=POST, body=der)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/ocsp-response"
    return r, ocsp.load_der_ocsp_response(r.body)


def get(client: Any, tenant: str, der: bytes) -> tuple[Any, ocsp.OCSPResponse]:
    path = f"/{tenant}/ocsp/" + urllib.parse.quote(base64.b64encode(der).decode(), safe="")
    r = client.http.get(path)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/ocsp-response"
    return r, ocsp.load_der_ocsp_response(r.body)


def verified_by(response: ocsp.OCSPResponse, ca: x509.Certificate) -> x509.Certificate:
    """The response's responder certificate, checked as a client does (RFC 6960 §4.2.2.2)."""
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    (signer,) = response.certificates
    signer.verify_directly_issued_by(ca)
    assert signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.OCSP_SIGNING]
    )
    assert isinstance(signer.extensions.get_extension_for_class(x509.OCSPNoCheck).value, x509.OCSPNoCheck)
    assert signer.not_valid_after_utc - signer.not_valid_before_utc <= timedelta(days=8)
    public = signer.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert response.signature_hash_algorithm is not None
    public.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm))
    key_hash = hashlib.sha1(
        public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    ).digest()
    assert response.responder_key_hash == key_hash
    return signer


def test_good_then_revoked_after_the_revoke_call(memory: Any) -> None:
    client, _ = memory
    ca = make_tenant(client, "acme")
    cert = enrol(client, "acme")
    _, response = post(client, "acme", request_der(cert, ca))
    verified_by(response, ca)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == cert.serial_number
    assert response.next_update_utc is not None
    assert response.next_update_utc - response.this_update_utc == timedelta(seconds=120)

    cert_id = hashlib.sha384(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    r = client.http.put(
        f"/acme/x509/cert/{cert_id}/revoke", headers=admin(), body=json.dumps({"reason": "keyCompromise"})
    )
    assert r.status_code == 200
    for answer in (post(client, "acme", request_der(cert, ca))[1], get(client, "acme", request_der(cert, ca))[1]):
        verified_by(answer, ca)
        assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
        assert answer.revocation_reason == x509.ReasonFlags.key_compromise
        assert answer.revocation_time_utc is not None
        assert abs(answer.revocation_time_utc - datetime.now(UTC)) < timedelta(minutes=1)


def test_nonce_is_echoed_and_a_nonce_response_is_not_cacheable(memory: Any) -> None:
    client, _ = memory
    ca = make_tenant(client, "acme")
    cert = enrol(client, "acme")
    nonce = bytes(range(16))
    r, response = get(client, "acme", request_der(cert, ca, nonce))
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    assert r.headers["Cache-Control"] == "no-store"
    r, response = get(client, "acme", request_der(cert, ca))
    with pytest.raises(x509.ExtensionNotFound):
        response.extensions.get_extension_for_class(x509.OCSPNonce)
    max_age = int(r.headers["Cache-Control"].split("max-age=")[1].split(",")[0])
    assert response.next_update_utc is not None
    assert 0 < max_age <= (response.next_update_utc - response.this_update_utc).total_seconds()
    assert r.headers["Cache-Control"].startswith("public")


def test_get_accepts_every_encoding_of_slash_and_plus(memory: Any) -> None:
    client, _ = memory
    ca = make_tenant(client, "acme")
    for _ in range(40):  # until a request's base64 holds both '/' and '+' (each serial changes it)
        cert = enrol(client, "acme")
        text = base64.b64encode(request_der(cert, ca)).decode()
        if "/" in text and "+" in text:
            break
    else:
        pytest.fail("no request with both '/' and '+' in its base64")
    for segment in (
        urllib.parse.quote(text, safe=""),  # RFC 5019 (what NGINX sends)
        urllib.parse.quote(text, safe="+"),  # '+' left as it is
        text.replace("+", "-").replace("/", "_").rstrip("="),  # base64url without padding
    ):
        r = client.http.get(f"/acme/ocsp/{segment}")
        response = ocsp.load_der_ocsp_response(r.body)
        assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL, segment
        assert response.certificate_status == ocsp.OCSPCertStatus.GOOD


def test_unknown_serial_other_tenant_and_unknown_tenant(memory: Any) -> None:
    client, _ = memory
    ca = make_tenant(client, "acme")
    other_ca = make_tenant(client, "other")
    mine = enrol(client, "acme")
    theirs = enrol(client, "other")
    # A serial this CA never issued: unknown, signed by this CA's responder.
    forged = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        hashlib.sha1(ca.subject.public_bytes()).digest(),
        _key_hash(ca),
        12345,
        hashes.SHA1(),
    )
    _, response = post(client, "acme", forged.build().public_bytes(serialization.Encoding.DER))
    verified_by(response, ca)
    assert response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    # Another tenant's certificate asked of this tenant: unknown (not an issuer of this tenant).
    _, response = post(client, "acme", request_der(theirs, other_ca))
    verified_by(response, ca)
    assert response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    # This tenant's serial under the other tenant's CA name and key: unknown too.
    _, response = post(client, "other", request_der(mine, ca))
    assert response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    # A tenant that does not exist signs nothing.
    _, response = post(client, "nosuch", request_der(mine, ca))
    assert response.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


def _key_hash(ca: x509.Certificate) -> bytes:
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    return hashlib.sha1(
        public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    ).digest()


@pytest.mark.parametrize(
    "body", [b"", b"\x30\x03\x02\x01\x01", b"not der at all", b"\x30" * 5000], ids=["empty", "junk", "text", "huge"]
)
def test_malformed_requests_are_malformed_request_never_5xx(memory: Any, body: bytes) -> None:
    client, _ = memory
    make_tenant(client, "acme")
    _, response = post(client, "acme", body)
    assert response.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    for segment in ("!!!", "QUJD", "%ZZ", "a" * 9000):
        r = client.http.get(f"/acme/ocsp/{segment}")
        assert r.status_code == 200
        response = ocsp.load_der_ocsp_response(r.body)
        assert response.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        assert r.headers["Cache-Control"] == "no-store"


def test_oversized_nonce_is_malformed(memory: Any) -> None:
    client, _ = memory
    ca = make_tenant(client, "acme")
    cert = enrol(client, "acme")
    _, response = post(client, "acme", request_der(cert, ca, b"n" * 33))
    assert response.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_revoked_ca_answers_revoked_for_what_it_issued(memory: Any) -> None:
    client, _ = memory
    ca = make_tenant(client, "acme")
    cert = enrol(client, "acme")
    assert post(client, "acme", request_der(cert, ca))[1].certificate_status == ocsp.OCSPCertStatus.GOOD
    ca_id = hashlib.sha384(ca.public_bytes(serialization.Encoding.DER)).hexdigest()
    r = client.http.put(f"/acme/x509/ca/{ca_id}/revoke", headers=admin(), body="{}")
    assert r.status_code == 200, r.body
    _, response = post(client, "acme", request_der(cert, ca))
    verified_by(response, ca)  # the responder certificate made before the revocation still signs
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason == x509.ReasonFlags.ca_compromise


def test_signer_is_reissued_when_near_expiry_and_stored(memory: Any) -> None:
    from chalicelib.service import ocsp as service
    from chalicelib.service.tenants import get_tenant

    client, backend = memory
    ca = make_tenant(client, "acme")
    cert = enrol(client, "acme")
    tenant = get_tenant("acme")
    entry = tenant.active_ca_cert()
    assert entry is not None
    first = verified_by(post(client, "acme", request_der(cert, ca))[1], ca)
    assert service.responder_certificate("acme", entry.cert_id) == first
    short = _put_short_signer(backend, "acme", ca, days=1)  # one day from expiry
    renewed = verified_by(post(client, "acme", request_der(cert, ca))[1], ca)
    assert renewed not in (first, short)
    assert renewed.not_valid_after_utc - datetime.now(UTC) > timedelta(days=6)
    assert service.responder_certificate("acme", entry.cert_id) == renewed
    # The upkeep: nothing to do now; it reports the CA certificate and its responder certificate.
    (state,) = service.ensure_signers("acme")
    assert state.ca_id == entry.cert_id and state.state == "active" and not state.renewed
    assert state.not_after == renewed.not_valid_after_utc


def test_ensure_signers_issues_for_every_ca_that_can_sign(memory: Any) -> None:
    from chalicelib.service import ocsp as service

    client, _ = memory
    make_tenant(client, "acme")
    r = client.http.post("/acme/x509/ca/rotate", headers=admin(), body=REFERENCE_SPEC.replace('"Root CA"', '"CA 2"'))
    assert r.status_code in (200, 201), r.body
    states = service.ensure_signers("acme")
    assert [s.state for s in states] == ["trusted", "active"]
    assert all(s.renewed and s.not_after is not None for s in states)
    assert not any(s.renewed for s in service.ensure_signers("acme"))


def test_a_warm_request_reads_the_status_once_and_nothing_else(memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hot path: with the responder kept, the tenant (read through its cache, which the test stage
    sets to 0 s) and the status by serial, never cached (a revocation shows at the next request); no key
    store call."""
    client, backend = memory
    ca = make_tenant(client, "acme")
    cert = enrol(client, "acme")
    der = request_der(cert, ca)
    post(client, "acme", der)  # warms the tenant, the issuer hashes and the responder
    calls: list[str] = []
    for obj in (backend.certificates, backend.tenants, backend.keystore):
        for name in [n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n))]:
            original = getattr(obj, name)
            monkeypatch.setattr(obj, name, lambda *a, _o=original, _n=name, **k: calls.append(_n) or _o(*a, **k))
    for _ in range(3):
        assert post(client, "acme", der)[1].certificate_status == ocsp.OCSPCertStatus.GOOD
    assert calls == ["get", "get_certificate_by_serial"] * 3, calls


def test_issued_certificates_name_the_responder_when_public_base_url_is_set(memory: Any) -> None:
    client, _ = memory
    make_tenant(client, "acme", {"publicBaseUrl": "https://pki.example.com"})
    cert = enrol(client, "acme")
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [(d.access_method, d.access_location.value) for d in aia] == [
        (x509.oid.AuthorityInformationAccessOID.OCSP, "https://pki.example.com/acme/ocsp")
    ]
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name is not None
    assert cdp[0].full_name[0].value.startswith("https://pki.example.com/acme/x509/crl/")
    make_tenant(client, "plain")
    with pytest.raises(x509.ExtensionNotFound):
        enrol(client, "plain").extensions.get_extension_for_class(x509.AuthorityInformationAccess)


def _put_short_signer(backend: Any, tenant_id: str, ca: x509.Certificate, days: float) -> x509.Certificate:
    """Store a responder certificate ``days`` from expiry for the tenant's active CA, as another container
    would have left it, and forget this container's copy."""
    from chalicelib.ca.ocsp import build_signer
    from chalicelib.context import current
    from chalicelib.service import ocsp as service
    from chalicelib.service.tenants import get_tenant

    tenant = get_tenant(tenant_id)
    entry = tenant.active_ca_cert()
    assert entry is not None
    key = ec.generate_private_key(ec.SECP256R1())
    short = build_signer(
        issuer=ca,
        issuer_key=backend.keystore.load(tenant.key_of(entry)),
        key=key,
        now=datetime.now(UTC),
        lifetime=timedelta(days=days),
    )
    value = {
        "certificate": base64.b64encode(short.public_bytes(serialization.Encoding.DER)).decode(),
        "key": base64.b64encode(
            key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        ).decode(),
    }
    backend.keystore.put_secret(tenant_id, service.signer_kind(entry.cert_id), json.dumps(value).encode(), replace=True)
    current().caches.ocsp_signers.clear()
    return short


def test_a_key_store_fault_uses_the_still_valid_responder_else_try_later(
    memory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.context import current
    from chalicelib.errors import Unavailable

    client, backend = memory
    ca = make_tenant(client, "acme")
    cert = enrol(client, "acme")
    short = _put_short_signer(backend, "acme", ca, days=1)  # due for re-issue, still valid

    def down(*_: object, **__: object) -> Any:
        raise Unavailable("the key store is not available")

    monkeypatch.setattr(backend.keystore, "load", down)
    response = post(client, "acme", request_der(cert, ca))[1]
    assert verified_by(response, ca) == short
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.next_update_utc is not None and response.next_update_utc <= short.not_valid_after_utc
    # No responder at all and the CA key unreachable: tryLater, nothing signed.
    backend.keystore.secrets.clear()
    current().caches.ocsp_signers.clear()
    response = post(client, "acme", request_der(cert, ca))[1]
    assert response.response_status == ocsp.OCSPResponseStatus.TRY_LATER


def test_a_retired_ca_is_answered_while_its_responder_lasts_then_unauthorized(
    memory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.context import current

    client, backend = memory
    old_ca = make_tenant(client, "acme")
    cert = enrol(client, "acme")
    first = verified_by(post(client, "acme", request_der(cert, old_ca))[1], old_ca)
    r = client.http.post("/acme/x509/ca/rotate", headers=admin(), body=REFERENCE_SPEC.replace('"Root CA"', '"CA 2"'))
    assert r.status_code in (200, 201), r.body
    old_id = hashlib.sha384(old_ca.public_bytes(serialization.Encoding.DER)).hexdigest()
    r = client.http.put(f"/acme/x509/ca/{old_id}/retire", headers=admin(), body='{"force": true}')
    assert r.status_code == 200, r.body
    assert r.json_body["keyDeletionScheduled"] is True
    current().caches.ocsp_signers.clear()  # another container: the stored responder still signs
    response = post(client, "acme", request_der(cert, old_ca))[1]
    assert verified_by(response, old_ca) == first
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    # Its responder gone (expired, say) and its key scheduled for deletion: nothing can sign for it.
    backend.keystore.secrets.clear()
    current().caches.ocsp_signers.clear()
    assert post(client, "acme", request_der(cert, old_ca))[1].response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
    # ... and the next requests about it do not go to the key store each time.
    calls: list[str] = []
    for name in ("load", "load_secret"):
        original = getattr(backend.keystore, name)
        monkeypatch.setattr(backend.keystore, name, lambda *a, _o=original, _n=name: calls.append(_n) or _o(*a))
    for _ in range(3):
        assert (
            post(client, "acme", request_der(cert, old_ca))[1].response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
        )
    assert calls == []


def test_a_bare_slash_in_a_get_is_another_path_never_a_5xx(memory: Any) -> None:
    client, _ = memory
    make_tenant(client, "acme")
    r = client.http.get("/acme/ocsp/MEIwQDA+MDwwOjAJBgUrDgMCGgUABBQ/abc")
    # No route: what API Gateway (and Chalice's local gateway) answer a path they do not know.
    assert r.status_code == 403 and json.loads(r.body) == {"message": "Missing Authentication Token"}
