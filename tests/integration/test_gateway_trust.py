"""Trust at the gateway: revocation binds to the certificate as issued, not to its bytes; the public
route writes nothing for anonymous junk; the optional gateway credential."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seacat_client.cr import build_cr
from tests.conftest import REFERENCE_SPEC
from tests.integration.test_gateway_api import OCTET, auth, authenticate, enrol, pem

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


@pytest.fixture
def tenants(client: Any, operator_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEACAT_REVOCATION_CACHE_SECONDS", "0")
    from chalicelib.settings import get_settings

    get_settings.cache_clear()
    for name in ("acme", "other"):
        assert client.http.put(f"/tenants/{name}", headers=auth(operator_token), body="{}").status_code == 201
        assert (
            client.http.put(f"/{name}/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC).status_code
            == 201
        )


# -- re-encodings of one certificate --------------------------------------------------------------


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def _read_tlv(data: bytes, at: int) -> tuple[int, int]:
    """(start of content, end) of the TLV at ``at``."""
    first = data[at + 1]
    if first < 0x80:
        return at + 2, at + 2 + first
    size = first & 0x7F
    length = int.from_bytes(data[at + 2 : at + 2 + size], "big")
    return at + 2 + size, at + 2 + size + length


def with_signature(cert: x509.Certificate, signature_bits: bytes) -> bytes:
    """The certificate's DER with another signature BIT STRING content (TBS and algorithm kept)."""
    der = cert.public_bytes(serialization.Encoding.DER)
    body, _ = _read_tlv(der, 0)
    _, tbs_end = _read_tlv(der, body)
    _, alg_end = _read_tlv(der, tbs_end)
    return _tlv(0x30, der[body:alg_end] + _tlv(0x03, signature_bits))


def flipped(cert: x509.Certificate) -> bytes:
    """The s -> n - s copy: same TBS, same serial, a valid signature, other bytes."""
    r, s = decode_dss_signature(cert.signature)
    return with_signature(cert, b"\x00" + encode_dss_signature(r, P256_ORDER - s))


def as_pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def test_the_flipped_signature_is_a_valid_other_encoding(client: Any, tenants: None) -> None:
    _, cert = enrol(client)
    copy = x509.load_der_x509_certificate(flipped(cert))
    assert copy.public_bytes(serialization.Encoding.DER) != cert.public_bytes(serialization.Encoding.DER)
    assert copy.tbs_certificate_bytes == cert.tbs_certificate_bytes and copy.serial_number == cert.serial_number
    ca = x509.load_pem_x509_certificate(client.http.get("/acme/x509/ca").body)
    copy.verify_directly_issued_by(ca)  # the copy verifies under the tenant's CA
    # before any revocation it is the same certificate: it passes, with the same identity
    r = authenticate(client, as_pem(flipped(cert)))
    assert (
        r.status_code == 200
        and r.headers["X-SeaCat-Identity"] == authenticate(client, pem(cert)).headers["X-SeaCat-Identity"]
    )


@pytest.mark.parametrize(
    "how",
    ["revoke-certificate", "revoke-identity", "block-identity"],
)
def test_a_reencoded_copy_meets_the_same_refusal(client: Any, tenants: None, operator_token: str, how: str) -> None:
    _, cert = enrol(client)
    identity = authenticate(client, pem(cert)).headers["X-SeaCat-Identity"]
    copy = as_pem(flipped(cert))
    # the copy was seen (and its path validation cached) before the refusal
    assert authenticate(client, copy).status_code == 200
    cert_id = hashlib.sha384(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    path = {
        "revoke-certificate": f"/acme/x509/cert/{cert_id}/revoke",
        "revoke-identity": f"/acme/seacat/identity/{identity}/revoke",
        "block-identity": f"/acme/seacat/identity/{identity}/block",
    }[how]
    r = client.http.put(path, headers=auth(operator_token), body='{"reason": "keyCompromise"}')
    assert r.status_code == 200, r.body
    for body in (pem(cert), copy):
        r = authenticate(client, body)
        assert r.status_code == 403, (how, r.body)
        assert "X-SeaCat-Identity" not in r.headers
    # the copy is not a certificate of the store: its id names nothing
    copy_id = hashlib.sha384(flipped(cert)).hexdigest()
    assert client.http.get(f"/acme/x509/cert/{copy_id}", headers=auth(operator_token)).status_code == 404


def _reencodings() -> st.SearchStrategy[tuple[bool, int, int, bool]]:
    # (flip s, extra leading zero bytes on r, on s, long-form lengths)
    return st.tuples(st.booleans(), st.integers(0, 2), st.integers(0, 2), st.booleans())


def _encode(cert: x509.Certificate, flip: bool, pad_r: int, pad_s: int, long_form: bool) -> bytes:
    r, s = decode_dss_signature(cert.signature)
    if flip:
        s = P256_ORDER - s

    def integer(n: int, pad: int) -> bytes:
        raw = n.to_bytes((n.bit_length() + 8) // 8, "big")  # DER: a leading 0 when the top bit is set
        content = b"\x00" * pad + raw
        return b"\x02" + (b"\x81" + bytes([len(content)]) if long_form else bytes([len(content)])) + content

    seq = integer(r, pad_r) + integer(s, pad_s)
    sig = b"\x30" + (b"\x81" + bytes([len(seq)]) if long_form else bytes([len(seq)])) + seq
    return with_signature(cert, b"\x00" + sig)


@pytest.fixture
def revoked_cert(client: Any, tenants: None, operator_token: str) -> Iterator[x509.Certificate]:
    _, cert = enrol(client)
    cert_id = hashlib.sha384(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert (
        client.http.put(f"/acme/x509/cert/{cert_id}/revoke", headers=auth(operator_token), body="{}").status_code == 200
    )
    yield cert


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_reencodings())
def test_no_reencoding_of_a_revoked_certificate_passes(
    client: Any, revoked_cert: x509.Certificate, variant: tuple[bool, int, int, bool]
) -> None:
    der = _encode(revoked_cert, *variant)
    try:
        body = as_pem(der)
    except ValueError:
        body = der  # the parser refuses it as a certificate: sent as it is (DER)
    r = authenticate(client, body)
    assert r.status_code in (401, 403), (variant, r.status_code, r.body)


# -- the full key, and "issued by this service to this identity" ------------------------------------


def _ca_key() -> ec.EllipticCurvePrivateKey:
    from chalicelib import context
    from chalicelib.service.tenants import get_tenant

    return context.current().keystore.load(get_tenant("acme").key_secret)


def _sign_like(cert: x509.Certificate, public_key: ec.EllipticCurvePublicKey, serial: int) -> x509.Certificate:
    """A certificate with ``cert``'s names and extensions for ``public_key``, signed with the tenant's
    CA key but never stored: what a leaked CA key, or a migrated PKI's old certificates, would give."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for ext in cert.extensions:
        if isinstance(ext.value, x509.SubjectKeyIdentifier):
            builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), ext.critical)
        else:
            builder = builder.add_extension(ext.value, ext.critical)
    return builder.sign(_ca_key(), hashes.SHA256())


def test_a_certificate_the_service_never_issued_is_refused(client: Any, tenants: None) -> None:
    key, cert = enrol(client)
    forged = _sign_like(cert, key.public_key(), x509.random_serial_number())
    r = authenticate(client, pem(forged))
    assert r.status_code == 403 and "not a certificate this service issued" in r.body.decode()
    assert authenticate(client, pem(cert)).status_code == 200


def test_another_key_with_the_identity_is_refused_at_the_gateway_and_at_renewal(
    client: Any, tenants: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The identity is an 80-bit truncated hash of the key: a key that truncated to the same identity
    (found by brute force, simulated here) gets neither through the gateway nor a renewal."""
    from chalicelib.seacat import codec

    victim_key, victim_cert = enrol(client)
    victim = authenticate(client, pem(victim_cert)).headers["X-SeaCat-Identity"]
    attacker = ec.generate_private_key(ec.SECP256R1())
    attacker_point = attacker.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    real = codec.identity_from_point
    monkeypatch.setattr(codec, "identity_from_point", lambda p: victim if p == attacker_point else real(p))
    real_of_key = codec.identity_of_public_key
    monkeypatch.setattr(
        codec,
        "identity_of_public_key",
        lambda k: victim if k.public_numbers() == attacker.public_key().public_numbers() else real_of_key(k),
    )
    forged = _sign_like(victim_cert, attacker.public_key(), x509.random_serial_number())
    r = authenticate(client, pem(forged))
    assert r.status_code == 403 and "not the key this identity enrolled with" in r.body.decode()
    r = client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(attacker, application="gw"))
    assert r.status_code == 403, r.body
    assert "not the key" in r.body.decode()
    # the owner still enrols (renewal or its current certificate) and passes
    assert (
        client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(victim_key, application="gw")).status_code
        == 200
    )
    assert authenticate(client, pem(victim_cert)).status_code == 200


def test_an_earlier_certificate_of_the_identity_passes_until_revoked(
    client: Any, tenants: None, operator_token: str
) -> None:
    """After a renewal the previous certificate is still valid: it is found by its serial and passes,
    with the same revocation state for every encoding of it."""
    from chalicelib import context

    key, first = enrol(client)
    identity = authenticate(client, pem(first)).headers["X-SeaCat-Identity"]
    # a renewal: make the current certificate due, then enrol again
    store = context.current().certificates
    record = store.get_identity("acme", identity)
    assert record is not None and record.cert_not_after is not None
    from dataclasses import replace

    due = datetime.now(UTC) + timedelta(days=10)  # the stored dates only: the certificate stands
    store.save_identity(replace(record, cert_not_before=due - timedelta(days=365), cert_not_after=due))
    r = client.http.put("/acme/seacat/enroll", headers=OCTET, body=build_cr(key, application="gw"))
    assert r.status_code == 200
    second = x509.load_der_x509_certificate(r.body)
    assert second.serial_number != first.serial_number
    for body in (pem(first), as_pem(flipped(first)), pem(second)):
        assert authenticate(client, body).status_code == 200
    first_id = hashlib.sha384(first.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert (
        client.http.put(f"/acme/x509/cert/{first_id}/revoke", headers=auth(operator_token), body="{}").status_code
        == 200
    )
    for body in (pem(first), as_pem(flipped(first))):
        assert authenticate(client, body).status_code == 403
    assert authenticate(client, pem(second)).status_code == 200


# -- no writes for anonymous junk --------------------------------------------------------------------


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every DynamoDB / Secrets Manager write the service makes, by operation name."""
    import botocore.client

    seen: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def spy(self: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation in WRITES or operation.startswith(("Create", "Put", "Update")):
            seen.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    return seen


def _foreign_certificate() -> bytes:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Root CA")])
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "AAAAAAAAAAAAAAAA")]))
        .issuer_name(name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(
    "tenant, body, verify",
    [
        ("acme", b"x" * 80, None),  # no X-SSL-Client-Verify
        ("acme", b"x" * 80, "FAILED:" + "A" * 200),  # NGINX's verification failed (caller-chosen text)
        ("acme", b"", "SUCCESS"),  # no certificate
        ("acme", b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n", "SUCCESS"),
        ("nosuchtenant", None, "SUCCESS"),  # a tenant nobody created
        ("acme", "foreign", "SUCCESS"),  # a certificate of another CA
        ("other", "acme-cert", "SUCCESS"),  # a certificate of another tenant's CA
    ],
)
def test_anonymous_junk_writes_nothing(
    client: Any, tenants: None, writes: list[str], tenant: str, body: Any, verify: str | None
) -> None:
    _, cert = enrol(client)
    if body is None or body == "acme-cert":
        body = pem(cert)
    elif body == "foreign":
        body = _foreign_certificate()
    writes.clear()
    r = authenticate(client, body, verify=verify, tenant=tenant)
    assert r.status_code in (401, 403)
    assert writes == [], writes
    assert "A" * 20 not in r.body.decode()  # the caller's text is not echoed


def test_a_revoked_identity_presenting_its_certificate_is_audited_once_per_window(
    client: Any, tenants: None, operator_token: str, writes: list[str]
) -> None:
    _, cert = enrol(client)
    identity = authenticate(client, pem(cert)).headers["X-SeaCat-Identity"]
    assert client.http.put(f"/acme/seacat/identity/{identity}/block", headers=auth(operator_token)).status_code == 200
    writes.clear()
    assert authenticate(client, pem(cert)).status_code == 403
    assert writes == ["PutItem"]  # one audit item
    for _ in range(5):  # replays within the window: no more writes
        assert authenticate(client, pem(cert)).status_code == 403
        assert authenticate(client, as_pem(flipped(cert))).status_code == 403
    assert writes == ["PutItem"]
    events = json.loads(
        client.http.get("/audit?tenant=acme&type=authentication.denied", headers=auth(operator_token)).body
    )["items"]
    assert [(e["subject"], e["details"]["reason"]) for e in events] == [(identity, "identity is blocked")]


# -- the gateway credential ----------------------------------------------------------------------


def _with_credential(client: Any, body: bytes, credential: str | None) -> int:
    headers = {"Content-Type": "text/plain", "X-SSL-Client-Verify": "SUCCESS"}
    if credential is not None:
        headers["X-SeaCat-Gateway-Credential"] = credential
    return int(client.http.put("/acme/seacat/nginx_authenticate", headers=headers, body=body).status_code)


def test_the_gateway_credential_is_off_by_default_then_required_and_rotates(
    client: Any, tenants: None, operator_token: str
) -> None:
    _, cert = enrol(client)
    body = pem(cert)
    tenant = json.loads(client.http.get("/tenants/acme", headers=auth(operator_token)).body)
    assert tenant["config"]["gatewayCredentials"] == 0
    assert _with_credential(client, body, None) == 200  # the reference NGINX config sends none

    r = client.http.post("/acme/gateway/credential", headers=auth(operator_token))
    assert r.status_code == 201, r.body
    first = json.loads(r.body)
    assert first["header"] == "X-SeaCat-Gateway-Credential" and first["valid"] == 1
    assert first["credential"].startswith("sgc_")
    # shown once: the tenant shows how many, not which
    shown = client.http.get("/tenants/acme", headers=auth(operator_token)).body.decode()
    assert first["credential"] not in shown and json.loads(shown)["config"]["gatewayCredentials"] == 1
    assert "gatewayCredentialSha256" not in shown
    assert hashlib.sha256(first["credential"].encode()).hexdigest() not in shown

    assert _with_credential(client, body, None) == 401
    assert _with_credential(client, body, "sgc_" + secrets.token_urlsafe(32)) == 401
    assert _with_credential(client, body, first["credential"]) == 200
    # another tenant's gateway credential state is its own
    assert authenticate(client, body, tenant="other").status_code == 403

    second = json.loads(client.http.post("/acme/gateway/credential", headers=auth(operator_token)).body)
    assert second["valid"] == 2
    assert _with_credential(client, body, first["credential"]) == 200  # still valid while rolling out
    assert _with_credential(client, body, second["credential"]) == 200
    r = client.http.delete("/acme/gateway/credential?previous=true", headers=auth(operator_token))
    assert r.status_code == 200 and json.loads(r.body)["valid"] == 1
    assert _with_credential(client, body, first["credential"]) == 401
    assert _with_credential(client, body, second["credential"]) == 200
    r = client.http.delete("/acme/gateway/credential", headers=auth(operator_token))
    assert r.status_code == 200 and json.loads(r.body)["valid"] == 0
    assert _with_credential(client, body, None) == 200


def test_gateway_credential_routes_need_the_tenants_admin(client: Any, tenants: None, operator_token: str) -> None:
    r = client.http.post("/acme/gateway/credential")
    assert r.status_code == 401
    other = json.loads(client.http.post("/tokens", headers=auth(operator_token), body='{"tenant": "other"}').body)[
        "token"
    ]
    assert client.http.post("/acme/gateway/credential", headers=auth(other)).status_code == 404
    assert client.http.delete("/acme/gateway/credential", headers=auth(other)).status_code == 404
    r = client.http.delete("/acme/gateway/credential?previous=maybe", headers=auth(operator_token))
    assert r.status_code == 400 and json.loads(r.body)["field"] == "previous"
    assert client.http.post("/nosuch/gateway/credential", headers=auth(operator_token)).status_code == 404
