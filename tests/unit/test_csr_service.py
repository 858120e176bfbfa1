"""PKCS#10 signing under profiles on the in-memory context: the use case (chalicelib/service/csr.py), the
profile admin, and the routes through chalice.test.Client."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chalicelib.domain import CertificateKind, RequestKind, RequestState
from chalicelib.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from tests.approve_hook import Hook
from tests.conftest import REFERENCE_SPEC, memory_client

TOKEN = "sct_00000000000000cc_profiles-operator-token-0123456789"
ROUTERS = {
    "keyTypes": ["P-256", "RSA"],
    "lifetimeDays": 30,
    "extendedKeyUsage": ["clientAuth", "serverAuth"],
    "sans": {"dns": ["*.dev.example.com"], "uri": ["spiffe://example.org/**"]},
}


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with memory_client(monkeypatch, TOKEN, SEACAT_REVOCATION_CACHE_SECONDS="0") as (client, backend):
        yield client, backend


def admin(content_type: str = "application/json", **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", "Content-Type": content_type, **extra}


def tenant(client: Any, config: dict[str, Any] | None = None, profile: dict[str, Any] | None = ROUTERS) -> None:
    assert client.http.put("/tenants/acme", headers=admin(), body=json.dumps(config or {})).status_code == 201
    assert client.http.put("/acme/x509/self-signed", headers=admin(), body=REFERENCE_SPEC).status_code == 201
    if profile is not None:
        r = client.http.put("/acme/x509/profiles/routers", headers=admin(), body=json.dumps(profile))
        assert r.status_code == 201, r.body


def make_csr(
    key: Any = None, cn: str = "r1", sans: list[x509.GeneralName] | None = None, eku: list[Any] | None = None
) -> tuple[Any, x509.CertificateSigningRequest]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    )
    builder = builder.add_extension(
        x509.SubjectAlternativeName(sans or [x509.DNSName(f"{cn}.dev.example.com")]), critical=False
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return key, builder.sign(key, hashes.SHA256())


def der(csr: x509.CertificateSigningRequest) -> bytes:
    return csr.public_bytes(serialization.Encoding.DER)


def ca_cert(client: Any) -> x509.Certificate:
    return x509.load_pem_x509_certificate(client.http.get("/acme/x509/ca").body)


# -- the use case -------------------------------------------------------------------------------


def test_issue_store_list_revoke(memory: Any) -> None:
    from chalicelib.context import current
    from chalicelib.service import csr, revocation

    client, backend = memory
    tenant(client, {"publicBaseUrl": "https://pki.example.com"})
    key, request = make_csr(
        sans=[x509.DNSName("r1.dev.example.com"), x509.UniformResourceIdentifier("spiffe://example.org/r1")]
    )
    outcome = csr.sign_csr("acme", der(request), "routers", requester="tok1")
    assert (outcome.status, outcome.outcome, outcome.profile) == (200, "issued", "routers")
    record = outcome.certificate
    assert record is not None and record.kind == CertificateKind.X509 and record.identity == outcome.identity
    cert = x509.load_der_x509_certificate(record.der)
    ca = ca_cert(client)
    cert.verify_directly_issued_by(ca)
    assert cert.subject.rfc4514_string() == "CN=r1" and cert.public_key() == request.public_key()
    assert list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value) == [
        x509.DNSName("r1.dev.example.com"),
        x509.UniformResourceIdentifier("spiffe://example.org/r1"),
    ]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.SERVER_AUTH,
    ]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert 30 * 86400 <= lifetime.total_seconds() <= 30 * 86400 + 301
    ca_id = hashlib.sha384(ca.public_bytes(serialization.Encoding.DER)).hexdigest()
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name == [x509.UniformResourceIdentifier(f"https://pki.example.com/acme/x509/crl/{ca_id}")]
    (aia,) = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert aia.access_location == x509.UniformResourceIdentifier("https://pki.example.com/acme/ocsp")
    # ... and the responder answers for it, by issuer and serial, as for a SeaCat certificate
    from cryptography.x509 import ocsp

    from chalicelib.service import ocsp as responder

    asked = ocsp.OCSPRequestBuilder().add_certificate(cert, ca, hashes.SHA1()).build()
    answer = ocsp.load_der_ocsp_response(responder.respond("acme", asked.public_bytes(serialization.Encoding.DER)).der)
    assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD and answer.serial_number == cert.serial_number

    store = current().certificates
    stored_request = store.get_request("acme", outcome.request_id)
    assert stored_request is not None and stored_request.kind == RequestKind.CSR
    assert stored_request.state == RequestState.ISSUED and stored_request.profile == "routers"
    assert stored_request.cert_id == record.cert_id and stored_request.der == der(request)
    identity = store.get_identity("acme", outcome.identity)
    assert identity is not None and identity.cert_id == record.cert_id and identity.certificates == 1
    assert outcome.request_id == hashlib.sha384(der(request)).hexdigest()
    assert store.get_certificate_by_serial("acme", cert.serial_number) == record  # the serial is claimed

    # the same CSR again: the same certificate; listed under the key's identity
    again = csr.sign_csr("acme", request, "routers", requester="tok1")
    assert again.outcome == "existing" and again.certificate == record
    listed = client.http.get(f"/acme/seacat/identity/{outcome.identity}/certificates", headers=admin()).json_body
    assert [i["_id"] for i in listed["items"]] == [record.cert_id]
    assert listed["items"][0]["family"] == "x509" and listed["items"][0]["identity"] == outcome.identity

    # the same CSR under another profile that admits it too: a conflict, not the first profile's certificate
    client.http.put("/acme/x509/profiles/other", headers=admin(), body=json.dumps(ROUTERS))
    with pytest.raises(Conflict) as conflict:
        csr.sign_csr("acme", request, "other", requester="tok1")
    assert conflict.value.field == "profile"

    # revoked: in the CRL; the same CSR is refused, and so is a new CSR of the same key (its current
    # certificate is revoked), as for a SeaCat identity; a new key is issued
    revocation.revoke_certificate("acme", record.cert_id, "keyCompromise")
    crl = x509.load_der_x509_crl(client.http.get("/acme/x509/crl").body)
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    with pytest.raises(Forbidden, match="revoked"):
        csr.sign_csr("acme", request, "routers", requester="tok1")
    with pytest.raises(Forbidden, match="certificate is revoked"):
        csr.sign_csr("acme", make_csr(key, cn="r1b")[1], "routers", requester="tok1")
    assert csr.sign_csr("acme", make_csr(cn="r1c")[1], "routers", requester="tok1").status == 200
    events = [e.event for e in backend.shared.audit]
    assert "profile.created" in events and events.count("certificate.issued") == 2


def test_refusals_name_the_field_and_store_nothing(memory: Any) -> None:
    from chalicelib.context import current
    from chalicelib.service import csr

    client, _ = memory
    tenant(client)
    _, outside = make_csr(sans=[x509.DNSName("r1.evil.example.org")])
    with pytest.raises(InvalidInput) as caught:
        csr.sign_csr("acme", outside, "routers", requester="t")
    assert caught.value.field == "subjectAltName[0]"
    _, code = make_csr(eku=[ExtendedKeyUsageOID.CODE_SIGNING])
    with pytest.raises(InvalidInput) as caught:
        csr.sign_csr("acme", code, "routers", requester="t")
    assert caught.value.field == "extendedKeyUsage[0]"
    for name, error in (("nope", NotFound), ("seacat", InvalidInput)):
        with pytest.raises(error) as caught_profile:
            csr.sign_csr("acme", make_csr()[1], name, requester="t")
        assert caught_profile.value.field == "profile"
    assert current().certificates.get_request("acme", hashlib.sha384(der(outside)).hexdigest()) is None
    with pytest.raises(NotFound):
        csr.sign_csr("other", make_csr()[1], "routers", requester="t")


def test_blocked_identity_is_refused(memory: Any) -> None:
    from chalicelib.ca.csr import csr_identity
    from chalicelib.service import approvals, csr

    client, _ = memory
    tenant(client)
    key, request = make_csr()
    approvals.set_blocked("acme", csr_identity(key.public_key()), True)
    with pytest.raises(Forbidden, match="blocked"):
        csr.sign_csr("acme", request, "routers", requester="t")


def test_manual_approval_issues_on_approve(memory: Any) -> None:
    from chalicelib.service import approvals, csr

    client, _ = memory
    tenant(client, {"manualApproval": True})
    _, request = make_csr()
    pending = csr.sign_csr("acme", request, "routers", requester="t")
    assert (pending.status, pending.outcome, pending.certificate) == (202, "pending", None)
    assert csr.sign_csr("acme", request, "routers", requester="t").status == 202  # still waiting
    listed = client.http.get("/acme/seacat/cr?state=pending", headers=admin()).json_body
    (item,) = listed["items"]
    assert item["type"] == "csr" and item["profile"] == "routers" and item["_id"] == pending.request_id
    assert item["info"]["subjectAltName"] == ["DNS:r1.dev.example.com"] and item["info"]["keyType"] == "P-256"

    r = client.http.put(f"/acme/seacat/cr/{pending.request_id}/approve", headers=admin())
    assert r.status_code == 200, r.body
    assert r.json_body["request"]["state"] == "issued" and r.json_body["request"]["certificate"]
    cert_id = r.json_body["request"]["certificate"].split(":")[1]
    issued = csr.sign_csr("acme", request, "routers", requester="t")
    assert issued.outcome == "existing" and issued.certificate is not None and issued.certificate.cert_id == cert_id
    # approving again answers the same; rejecting now is a conflict
    assert client.http.put(f"/acme/seacat/cr/{pending.request_id}/approve", headers=admin()).status_code == 200
    assert client.http.put(f"/acme/seacat/cr/{pending.request_id}/reject", headers=admin()).status_code == 409
    assert client.http.get("/acme/seacat/cr?state=pending", headers=admin()).json_body["count"] == 0
    assert approvals.get_request("acme", pending.request_id).decided_by == "00000000000000cc"


def test_manual_rejection_and_a_profile_changed_meanwhile(memory: Any) -> None:
    from chalicelib.service import csr

    client, _ = memory
    tenant(client, {"manualApproval": True})
    _, first = make_csr(cn="a")
    _, second = make_csr(cn="b")
    one = csr.sign_csr("acme", first, "routers", requester="t")
    two = csr.sign_csr("acme", second, "routers", requester="t")
    assert client.http.put(f"/acme/seacat/cr/{one.request_id}/reject", headers=admin()).status_code == 200
    with pytest.raises(Forbidden, match="rejected"):
        csr.sign_csr("acme", first, "routers", requester="t")
    # the profile narrowed while the second waited: approving it is a 409 and it stays pending
    narrowed = {**ROUTERS, "sans": {"dns": ["*.other.example.com"]}}
    assert client.http.put("/acme/x509/profiles/routers", headers=admin(), body=json.dumps(narrowed)).status_code == 200
    r = client.http.put(f"/acme/seacat/cr/{two.request_id}/approve", headers=admin())
    assert r.status_code == 409 and "no longer fits" in r.json_body["message"]
    assert client.http.get(f"/acme/seacat/cr/{two.request_id}", headers=admin()).json_body["state"] == "pending"


def test_profile_approval_overrides_the_tenant(memory: Any) -> None:
    from chalicelib.service import csr

    client, _ = memory
    tenant(client, {"manualApproval": True}, {**ROUTERS, "approval": "auto"})
    assert csr.sign_csr("acme", make_csr()[1], "routers", requester="t").status == 200
    r = client.http.put("/acme/x509/profiles/held", headers=admin(), body=json.dumps({**ROUTERS, "approval": "manual"}))
    assert r.status_code == 201
    assert csr.sign_csr("acme", make_csr()[1], "held", requester="t").status == 202
    # webhook approval needs the tenant's approve URL
    r = client.http.put("/acme/x509/profiles/hooked", headers=admin(), body=json.dumps({"approval": "webhook"}))
    assert r.status_code == 400 and r.json_body["field"] == "approval"


@pytest.mark.parametrize("approves", [True, False])
def test_webhook_gets_the_csr_envelope(memory: Any, approves: bool) -> None:
    from chalicelib.service import csr, webhook

    client, _ = memory
    hook = Hook(b'{"result": "OK"}' if approves else b'{"result": "NO"}')
    try:
        r = client.http.put("/tenants/acme", headers=admin(), body=json.dumps({"approve": hook.url}))
        secret = r.json_body["webhookSecret"]
        tenant_ca = client.http.put("/acme/x509/self-signed", headers=admin(), body=REFERENCE_SPEC)
        assert tenant_ca.status_code == 201
        r = client.http.put("/acme/x509/profiles/routers", headers=admin(), body=json.dumps(ROUTERS))
        assert r.status_code == 201
        _, request = make_csr()
        if approves:
            assert csr.sign_csr("acme", request, "routers", requester="tok9").status == 200
        else:
            with pytest.raises(Forbidden, match="webhook"):
                csr.sign_csr("acme", request, "routers", requester="tok9")
            # the same CSR again: the webhook is asked again (its refusal is not a decision for good)
            with pytest.raises(Forbidden, match="webhook"):
                csr.sign_csr("acme", request, "routers", requester="tok9")
            assert len(hook.received) == 2
            hook.received.pop()
    finally:
        hook.close()
    ((headers, body),) = hook.received
    payload = json.loads(body)
    assert payload["type"] == "csr" and payload["family"] == "x509" and payload["profile"] == "routers"
    assert payload["_id"] == hashlib.sha384(der(request)).hexdigest() and payload["data"] == der(request).hex()
    info = payload["info"]
    assert info["subject"] == "CN=r1" and info["issuedSubject"] == "CN=r1" and info["requester"] == "tok9"
    assert info["subjectAltName"] == ["DNS:r1.dev.example.com"] and info["keyType"] == "P-256"
    assert info["extendedKeyUsage"] == ["clientAuth", "serverAuth"] and info["profile"] == "routers"
    key = bytes.fromhex(secret.removeprefix("whsec_"))
    t = int(headers[webhook.SIGNATURE_HEADER].split(",")[0].removeprefix("t="))
    assert headers[webhook.SIGNATURE_HEADER] == webhook.signature(key, body, t)
    state = client.http.get(f"/acme/seacat/cr/{payload['_id']}", headers=admin()).json_body["state"]
    assert state == ("issued" if approves else "rejected")


def test_webhook_removed_fails_closed(memory: Any) -> None:
    from chalicelib.service import csr

    client, _ = memory
    client.http.put("/tenants/acme", headers=admin(), body=json.dumps({"approve": "http://127.0.0.1:9/x"}))
    client.http.put("/acme/x509/self-signed", headers=admin(), body=REFERENCE_SPEC)
    body = json.dumps({**ROUTERS, "approval": "webhook"})
    assert client.http.put("/acme/x509/profiles/routers", headers=admin(), body=body).status_code == 201
    client.http.put("/tenants/acme", headers=admin(), body=json.dumps({"approve": None}))
    with pytest.raises(Unavailable):
        csr.sign_csr("acme", make_csr()[1], "routers", requester="t")


def test_renewal_skips_approval_unless_the_tenant_asks(memory: Any) -> None:
    from chalicelib.service import csr

    client, _ = memory
    tenant(client, {"manualApproval": True})
    assert csr.sign_csr("acme", make_csr()[1], "routers", requester="t", renewal=True).status == 200
    client.http.put("/tenants/acme", headers=admin(), body=json.dumps({"approveRenewals": True}))
    assert csr.sign_csr("acme", make_csr()[1], "routers", requester="t", renewal=True).status == 202


# -- profile admin ------------------------------------------------------------------------------


def test_profile_admin(memory: Any) -> None:
    from chalicelib.service import csr

    client, backend = memory
    tenant(client, profile=None)
    r = client.http.put("/acme/x509/profiles/routers", headers=admin(), body=json.dumps(ROUTERS))
    assert r.status_code == 201 and r.json_body["lifetimeHours"] == 720 and r.json_body["estDefault"] is False
    writes = len(backend.shared.audit)
    assert client.http.put("/acme/x509/profiles/routers", headers=admin(), body=json.dumps(ROUTERS)).status_code == 200
    assert len(backend.shared.audit) == writes  # the same PUT wrote nothing
    for name in ("b", "c"):
        assert client.http.put(f"/acme/x509/profiles/{name}", headers=admin(), body="{}").status_code == 201
    first = client.http.get("/acme/x509/profiles?limit=2", headers=admin()).json_body
    assert [p["name"] for p in first["items"]] == ["seacat", "routers"] and first["next"] == "routers"
    second = client.http.get(f"/acme/x509/profiles?limit=2&next={first['next']}", headers=admin()).json_body
    assert [p["name"] for p in second["items"]] == ["b", "c"] and second["next"] is None
    seacat = client.http.get("/acme/x509/profiles/seacat", headers=admin()).json_body
    assert seacat["builtin"] is True and seacat["keyTypes"] == ["P-256"]
    assert client.http.put("/acme/x509/profiles/seacat", headers=admin(), body="{}").status_code == 409
    assert client.http.delete("/acme/x509/profiles/seacat", headers=admin()).status_code == 409
    assert client.http.get("/acme/x509/profiles/nope", headers=admin()).status_code == 404
    assert client.http.get("/acme/x509/profiles/Bad%20Name", headers=admin()).status_code == 400
    bad = client.http.put("/acme/x509/profiles/x", headers=admin(), body=json.dumps({"sans": {"dns": ["*.com"]}}))
    assert bad.status_code == 400 and bad.json_body["field"] == "sans.dns[0]"

    # estProfile: must name a profile; that one cannot be deleted
    r = client.http.put("/tenants/acme", headers=admin(), body=json.dumps({"estProfile": "nope"}))
    assert r.status_code == 400 and r.json_body["field"] == "estProfile"
    r = client.http.put("/tenants/acme", headers=admin(), body=json.dumps({"estProfile": "routers"}))
    assert r.status_code == 200 and r.json_body["config"]["estProfile"] == "routers"
    assert r.json_body["config"]["profiles"] == ["routers", "b", "c"]
    assert csr.est_profile("acme").name == "routers"
    assert client.http.get("/acme/x509/profiles/routers", headers=admin()).json_body["estDefault"] is True
    assert client.http.delete("/acme/x509/profiles/routers", headers=admin()).status_code == 409
    r = client.http.delete("/acme/x509/profiles/b", headers=admin())
    assert r.status_code == 200 and r.json_body["deleted"] is True
    assert client.http.delete("/acme/x509/profiles/b", headers=admin()).json_body["deleted"] is False
    events = [e.event for e in backend.shared.audit]
    assert events.count("profile.created") == 3 and events.count("profile.deleted") == 1


def test_profile_limits(memory: Any) -> None:
    client, _ = memory
    tenant(client, profile=None)
    for index in range(32):
        assert client.http.put(f"/acme/x509/profiles/p{index}", headers=admin(), body="{}").status_code == 201
    r = client.http.put("/acme/x509/profiles/p32", headers=admin(), body="{}")
    assert r.status_code == 409 and "32" in r.json_body["message"]


def test_concurrent_configuration_change_is_retried(memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.context import current
    from chalicelib.service import profiles

    client, _ = memory
    tenant(client, profile=None)
    store = current().tenants
    real = store.update_config
    calls = {"n": 0}

    def racing(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise Conflict("tenant acme was changed concurrently, retry")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "update_config", racing)
    profile, created = profiles.put_profile("acme", "routers", dict(ROUTERS))
    assert created and calls["n"] == 2
    assert current().tenants.get("acme").config.profile("routers") == profile  # type: ignore[union-attr]


# -- the route ----------------------------------------------------------------------------------


def test_sign_route_formats_and_errors(memory: Any) -> None:
    client, _ = memory
    tenant(client)
    _, request = make_csr()
    pem = request.public_bytes(serialization.Encoding.PEM)
    r = client.http.post("/acme/x509/sign?profile=routers", headers=admin("application/pkcs10"), body=der(request))
    assert r.status_code == 200 and r.json_body["outcome"] == "issued" and r.json_body["family"] == "x509"
    cert = x509.load_pem_x509_certificate(r.json_body["certificate"].encode())
    cert.verify_directly_issued_by(ca_cert(client))
    assert r.json_body["identity"] and r.json_body["request"] == hashlib.sha384(der(request)).hexdigest()
    r = client.http.post(
        "/acme/x509/sign?profile=routers", headers=admin("text/plain", Accept="application/x-pem-file"), body=pem
    )
    assert r.status_code == 200 and x509.load_pem_x509_certificate(r.body) == cert
    r = client.http.post(
        "/acme/x509/sign?profile=routers", headers=admin("application/pkcs10", Accept="application/pkix-cert"), body=pem
    )
    assert r.status_code == 200 and x509.load_der_x509_certificate(r.body) == cert

    def post(path: str, body: bytes, **headers: str) -> Any:
        return client.http.post(path, headers={**admin("application/pkcs10"), **headers}, body=body)

    _, outside = make_csr(sans=[x509.DNSName("x.evil.org")])
    for path, body, headers, status, field in (
        ("/acme/x509/sign", der(request), {}, 400, "profile"),
        ("/acme/x509/sign?profile=routers&x=1", der(request), {}, 400, "x"),
        ("/acme/x509/sign?profile=routers", b"junk", {}, 400, "csr"),
        ("/acme/x509/sign?profile=routers", der(outside), {}, 400, "subjectAltName[0]"),
        ("/acme/x509/sign?profile=nope", der(request), {}, 404, "profile"),
        ("/acme/x509/sign?profile=routers", der(request), {"Accept": "image/png"}, 406, "Accept"),
        ("/acme/x509/sign?profile=routers", b"0" * 20000, {}, 413, "body"),
    ):
        r = post(path, body, **headers)
        assert (r.status_code, r.json_body.get("field")) == (status, field), (path, r.body)
    r = client.http.post(
        "/acme/x509/sign?profile=routers",
        headers=admin("application/x-www-form-urlencoded"),
        body=der(request),
    )
    assert r.status_code == 415
    r = client.http.post(
        "/acme/x509/sign?profile=routers", headers={"Content-Type": "application/pkcs10"}, body=der(request)
    )
    assert r.status_code == 401


def test_a_tenant_token_reaches_its_tenant_only(memory: Any) -> None:
    client, _ = memory
    tenant(client)
    assert client.http.put("/tenants/other", headers=admin(), body="{}").status_code == 201
    other = client.http.post("/tokens", headers=admin(), body=json.dumps({"tenant": "other"})).json_body["token"]
    headers = {"Authorization": f"Bearer {other}", "Content-Type": "application/pkcs10"}
    r = client.http.post("/acme/x509/sign?profile=routers", headers=headers, body=der(make_csr()[1]))
    assert r.status_code == 404
    assert client.http.get("/acme/x509/profiles", headers={"Authorization": f"Bearer {other}"}).status_code == 404
    assert (
        client.http.put(
            "/acme/x509/profiles/x", headers={**headers, "Content-Type": "application/json"}, body="{}"
        ).status_code
        == 404
    )


def test_nginx_authenticate_never_takes_a_csr_certificate_for_a_seacat_identity(memory: Any) -> None:
    from seacat_client.cr import build_cr

    client, _ = memory
    tenant(client)
    key, request = make_csr()
    r = client.http.post("/acme/x509/sign?profile=routers", headers=admin("application/pkcs10"), body=der(request))
    assert r.status_code == 200
    pem = r.json_body["certificate"].encode()
    gate = {"X-SSL-Client-Verify": "SUCCESS"}
    assert client.http.put("/acme/seacat/nginx_authenticate", headers=gate, body=pem).status_code == 403
    # even when the same key is also a SeaCat client's
    enrol = client.http.put(
        "/acme/seacat/enroll", headers={"Content-Type": "application/octet-stream"}, body=build_cr(key, application="a")
    )
    assert enrol.status_code == 200
    assert client.http.put("/acme/seacat/nginx_authenticate", headers=gate, body=pem).status_code == 403
    seacat_pem = x509.load_der_x509_certificate(enrol.body).public_bytes(serialization.Encoding.PEM)
    assert client.http.put("/acme/seacat/nginx_authenticate", headers=gate, body=seacat_pem).status_code == 200
