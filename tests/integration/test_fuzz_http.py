"""Bad input through the HTTP handlers (chalice.test.Client on moto): property tests with hypothesis.

Every input gets an answer with a reason and never a 5xx: a 4xx (text/plain for the SeaCat client
routes, the JSON error body elsewhere), a 2xx only where the input really is valid, and for
nginx_authenticate only 200, 401 or 403. Oversized bodies are refused (413) before any parser runs.

One moto environment serves the whole module (each test uses its own tenants), so the examples,
not the set-up, take the time. Examples are bounded and there is no deadline. The example counts
are recorded in docs/reliability.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import string
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from seacat_client import miniasn1 as der
from seacat_client.cr import build_cr
from tests.conftest import REFERENCE_SPEC, moto_client

OCTET = {"Content-Type": "application/octet-stream"}
OPERATOR = "sct_00000000000000f1_fuzz-operator-token-0123456789"
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


def fuzz(examples: int) -> settings:
    return settings(FUZZ, max_examples=examples)


def auth(token: str = OPERATOR) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


# -- one moto environment for the module -----------------------------------------------------------


@pytest.fixture(scope="module")
def env() -> Iterator[dict[str, Any]]:
    with moto_client(OPERATOR, SEACAT_REVOCATION_CACHE_SECONDS="0") as client:
        state: dict[str, Any] = {"client": client}
        for tenant in ("fuzz", "specs", "paths"):
            assert client.http.put(f"/tenants/{tenant}", headers=auth(), body="{}").status_code == 201
            ca = client.http.put(f"/{tenant}/x509/self-signed", headers=auth(), body=REFERENCE_SPEC)
            assert ca.status_code == 201
            state[f"{tenant}_ca"] = x509.load_pem_x509_certificate(ca.json_body["certificate"].encode())
        yield state


@pytest.fixture(scope="module")
def client(env: dict[str, Any]) -> Any:
    return env["client"]


def identity_of(key: ec.EllipticCurvePublicKey) -> str:
    point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.b32encode(hashlib.sha384(point).digest()).decode()[:16]


def gateway_answer(r: Any) -> bool:
    """No route matches (an empty path segment): API Gateway's own 403, the service never runs."""
    return r.status_code == 403 and r.headers.get("x-amzn-ErrorType") == "UnauthorizedException"


def assert_text_refusal(r: Any, allowed: set[int]) -> None:
    if gateway_answer(r):
        return
    assert r.status_code in allowed, (r.status_code, r.body[:200])
    if r.status_code >= 400:
        assert r.headers["Content-Type"].startswith("text/plain"), r.headers
        assert r.body.strip(), "a refusal without a reason"
        if r.status_code == 503:
            assert int(r.headers["Retry-After"]) > 0


def assert_json_refusal(r: Any, allowed: set[int]) -> None:
    if gateway_answer(r):
        return
    assert r.status_code in allowed, (r.status_code, r.body[:300])
    if r.status_code >= 400:
        body = r.json_body
        assert isinstance(body, dict), r.body[:200]
        if r.status_code == 405:  # the framework's, no route runs, in the API's error shape
            assert body.get("error") == "MethodNotAllowedError", body
        if r.status_code == 415:  # the framework's, before the route runs, in the API's error shape
            assert body.get("error") == "UnsupportedMediaType" and body.get("field") == "Content-Type", body
        assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str) and body["message"]
        assert set(body) <= {"error", "message", "field"}
        if r.status_code == 503:
            assert int(r.headers["Retry-After"]) > 0


# -- the SeaCat CR: PUT /{tenant}/seacat/enroll ------------------------------------------------------

KEYS = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
OID_EC = "1.2.840.10045.2.1"
OID_P256 = "1.2.840.10045.3.1.7"
OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"
OTHER_OIDS = ["1.2.840.10045.3.1.1", "1.3.132.0.34", "1.2.840.10045.4.3.3", "1.2.840.113549.1.1.1", "2.5.4.3"]


def ctx(tag: int, content: bytes) -> bytes:
    return der.tlv(tag, content)


def oid_content(dotted: str) -> bytes:
    return der.object_identifier(dotted)[2:]


@st.composite
def structured_crs(draw: st.DrawFn) -> tuple[bytes, bool, ec.EllipticCurvePrivateKey]:
    """A well-formed DER CR whose every field is drawn; returns (cr, should be accepted, key)."""
    key = draw(st.sampled_from(KEYS))
    version = draw(st.sampled_from([0x1902, 0x1902, 0x1902, 0, 1, 6401, 6403, -1, 2**40]))
    application = draw(st.binary(max_size=80) | st.text(max_size=40).map(lambda t: t.encode("utf-8")))
    created = draw(st.none() | st.binary(max_size=20) | st.just(b"191213143110Z"))
    valid_to = draw(st.none() | st.binary(max_size=20) | st.just(b"191213143610Z"))
    key_alg = draw(st.sampled_from([OID_EC, OID_EC, OID_EC, *OTHER_OIDS]))
    curve = draw(st.sampled_from([OID_P256, OID_P256, OID_P256, None, *OTHER_OIDS]))
    unused = draw(st.sampled_from([0, 0, 0, 0, 1, 7]))
    point_kind = draw(st.sampled_from(["key", "key", "key", "compressed", "random", "other-key", "prefix"]))
    good_point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    point = {
        "key": good_point,
        "compressed": key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        ),
        "random": b"\x04" + draw(st.binary(min_size=64, max_size=64)),
        "other-key": OTHER_KEY.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        ),
        "prefix": b"\x05" + good_point[1:],
    }[point_kind]
    attributes = draw(st.none() | st.lists(st.tuples(st.binary(max_size=12), st.binary(max_size=40)), max_size=5))
    sig_alg = draw(st.sampled_from([OID_ECDSA_SHA256, OID_ECDSA_SHA256, OID_ECDSA_SHA256, *OTHER_OIDS]))
    sig_params = draw(st.sampled_from([None, None, None, OID_P256]))
    sig_kind = draw(st.sampled_from(["valid", "valid", "valid", "other-key", "other-data", "random"]))

    key_info = ctx(
        0xA4,
        ctx(0xA0, ctx(0x80, oid_content(key_alg)) + (ctx(0x81, oid_content(curve)) if curve else b""))
        + ctx(0x81, bytes([unused]) + point),
    )
    tbs_content = (
        ctx(0x80, der.integer(version)[2:])
        + ctx(0x81, application)
        + (ctx(0x82, created) if created is not None else b"")
        + (ctx(0x83, valid_to) if valid_to is not None else b"")
        + key_info
        + (
            ctx(0xA5, b"".join(der.tlv(0x30, ctx(0x80, k) + ctx(0x81, v)) for k, v in attributes))
            if attributes is not None
            else b""
        )
    )
    tbs = ctx(0xA0, tbs_content)
    if sig_kind == "valid":
        signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    elif sig_kind == "other-key":
        signature = OTHER_KEY.sign(tbs, ec.ECDSA(hashes.SHA256()))
    elif sig_kind == "other-data":
        signature = key.sign(tbs + b"\x00", ec.ECDSA(hashes.SHA256()))
    else:
        signature = draw(st.binary(min_size=0, max_size=80))
    sig_alg_der = ctx(
        0xA1, ctx(0x80, oid_content(sig_alg)) + (ctx(0x81, oid_content(sig_params)) if sig_params else b"")
    )
    cr = der.tlv(0x30, tbs + sig_alg_der + ctx(0x82, signature))
    # Valid exactly when every field is, and the point's owner signed: that may be OTHER_KEY too.
    owner = {"key": key, "other-key": OTHER_KEY}.get(point_kind)
    signer = {"valid": key, "other-key": OTHER_KEY}.get(sig_kind)
    accepted = (
        version == 0x1902
        and key_alg == OID_EC
        and curve == OID_P256
        and unused == 0
        and owner is not None
        and signer is owner
        and sig_alg == OID_ECDSA_SHA256
        and sig_params is None
    )
    if owner is not None:
        key = owner
    return cr, accepted, key


@fuzz(100)
@given(case=structured_crs())
def test_structured_crs_are_issued_exactly_when_valid(
    client: Any, case: tuple[bytes, bool, ec.EllipticCurvePrivateKey]
) -> None:
    cr, accepted, key = case
    r = client.http.put("/fuzz/seacat/enroll", headers=OCTET, body=cr)
    if accepted:
        assert r.status_code == 200, r.body[:300]
        cert = x509.load_der_x509_certificate(r.body)
        assert cert.public_key() == key.public_key()
        assert r.headers["X-SeaCat-Identity"] == identity_of(key.public_key())
    else:
        assert_text_refusal(r, {400})


def mutate(data: bytes, draw: st.DrawFn) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "length", "dup"]))
        if not out:
            out += b"\x30"
        i = draw(st.integers(0, len(out) - 1))
        if op == "flip":
            out[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            out[i] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0x81, 0x82, 0x84, 0xFF, 0x30, 0xA0]))
        elif op == "insert":
            out[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del out[i : i + draw(st.integers(1, 8))]
        elif op == "truncate":
            del out[i:]
        elif op == "length":  # DER length octets are where parsers break
            out[i : i + 1] = bytes([0x84]) + draw(st.binary(min_size=4, max_size=4))
        else:
            j = draw(st.integers(i, len(out)))
            out[j:j] = out[i:j]
    return bytes(out)


@st.composite
def raw_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["binary", "mutated", "mutated", "prefix"]))
    if kind == "binary":
        return draw(st.binary(max_size=600))
    base = build_cr(
        draw(st.sampled_from(KEYS)),
        application=draw(st.text(max_size=30)),
        attributes=[("OS", "fuzz")],
        created_at=CREATED,
        deterministic=True,  # the same draws give the same bytes (hypothesis replays them)
    )
    if kind == "prefix":  # plausible headers, random rest
        return base[: draw(st.integers(0, len(base)))] + draw(st.binary(max_size=200))
    return mutate(base, draw)


@fuzz(250)
@given(
    body=raw_bodies(),
    content_type=st.sampled_from(["application/octet-stream", "application/x-seacat-cr", "application/pkcs10"]),
)
@example(body=b"", content_type="application/octet-stream")
@example(body=b"\x30\x84\xff\xff\xff\xff", content_type="application/octet-stream")
@example(body=b"\x30\x80\x00\x00", content_type="application/octet-stream")
def test_any_cr_body_gets_a_4xx_with_a_reason_or_a_certificate(client: Any, body: bytes, content_type: str) -> None:
    r = client.http.put("/fuzz/seacat/enroll", headers={"Content-Type": content_type}, body=body)
    assert_text_refusal(r, {200, 400})
    if r.status_code == 200:  # a mutation that left the CR valid: the certificate is for the CR's key
        cert = x509.load_der_x509_certificate(r.body)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == r.headers["X-SeaCat-Identity"]
        assert r.headers["X-SeaCat-Identity"] in {identity_of(k.public_key()) for k in KEYS}


# -- the JSON certificate spec: PUT /{tenant}/x509/self-signed ----------------------------------------

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def or_junk(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, strategy, strategy, json_values)


numbers = st.integers(-(10**25), 10**25) | st.floats(allow_nan=True, allow_infinity=True) | st.integers(0, 500)
relative = st.dictionaries(
    st.sampled_from(["years", "weeks", "days", "hours", "minutes", "seconds", "months"]), or_junk(numbers), max_size=3
)
times = or_junk(
    st.sampled_from(
        [
            "now",
            "2030-01-01T00:00:00Z",
            "2030-01-01",
            "1949-12-31T23:59:59Z",
            "1950-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-12:00",
            "0001-01-01T00:00:00+01:00",
            "2049-12-31T23:59:59Z",
            "2050-01-01T00:00:00Z",
            "2030-02-30T00:00:00Z",
            "",
            "garbage",
        ]
    )
    | st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(lambda d: d.isoformat() + "Z")
    | relative
)
names = st.sampled_from(
    [
        "C",
        "ST",
        "L",
        "O",
        "OU",
        "CN",
        "GN",
        "name",
        "emailAddress",
        "serialNumber",
        "DC",
        "UID",
        "title",
        "XX",
        "countryName",
    ]
)
subjects = st.dictionaries(names | st.text(max_size=6), or_junk(st.text(max_size=70)), max_size=6)
san_items = or_junk(
    st.sampled_from(["DNS:", "IP:", "email:", "URI:", "dns:", "X:", ""]).flatmap(
        lambda p: st.text(max_size=40).map(lambda t: p + t)
    )
    | st.sampled_from(
        [
            "DNS:example.com",
            "DNS:*.example.com",
            "IP:127.0.0.1",
            "IP:::1",
            "IP:fe80::1%eth0",
            "email:a@b",
            "URI:https://x/",
        ]
    )
    | st.dictionaries(
        st.sampled_from(["dns", "ip", "email", "uri", "DNS", "x"]), st.text(max_size=30), min_size=1, max_size=2
    )
)
usages = st.sampled_from(
    [
        "digitalSignature",
        "nonRepudiation",
        "contentCommitment",
        "keyEncipherment",
        "dataEncipherment",
        "keyAgreement",
        "keyCertSign",
        "cRLSign",
        "encipherOnly",
        "decipherOnly",
        "bogus",
    ]
)
ekus = st.sampled_from(
    ["serverAuth", "clientAuth", "codeSigning", "OCSPSigning", "anyExtendedKeyUsage", "1.2.3.4", "1.2", "x"]
)
extensions = st.one_of(
    st.builds(
        lambda ca, pl: {"basicConstraints": {"CA": ca, "pathLen": pl}},
        or_junk(st.booleans()),
        or_junk(st.none() | st.integers(-3, 2**40)),
    ),
    st.builds(lambda u: {"keyUsage": u}, or_junk(st.lists(usages, max_size=4))),
    st.builds(lambda u: {"extendedKeyUsage": u}, or_junk(st.lists(ekus, max_size=4))),
    st.builds(lambda u: {"subjectAltName": u}, or_junk(st.lists(san_items, max_size=4))),
    st.builds(
        lambda u: {"crlDistributionPoints": u},
        or_junk(
            st.lists(st.sampled_from(["http://x/crl", "ldap://x", "ftp://x", "x"]) | st.text(max_size=20), max_size=3)
        ),
    ),
    st.builds(lambda u: {"subjectKeyIdentifier": u}, or_junk(st.just(True) | st.just({}))),
    st.builds(lambda u: {"authorityKeyIdentifier": u}, or_junk(st.just(True) | st.just({}))),
    st.dictionaries(st.text(max_size=10), json_values, max_size=2),
).flatmap(
    lambda ext: st.sampled_from([None, True, False, "yes"]).map(lambda c: ext if c is None else {**ext, "critical": c})
)
specs = st.fixed_dictionaries(
    {},
    optional={
        "serialNumber": or_junk(st.integers(-5, 2**170)),
        "subject": or_junk(subjects),
        "validity": or_junk(st.fixed_dictionaries({}, optional={"notBefore": times, "notAfter": times})),
        "extensions": or_junk(st.lists(extensions, max_size=6)),
        "extra": json_values,
    },
)


def post_spec(client: Any, body: str) -> Any:
    return client.http.put("/specs/x509/self-signed", headers=auth(), body=body)


@fuzz(200)
@given(spec=specs)
@example(spec={"validity": {"notAfter": {"days": float("inf")}}})
@example(spec={"validity": {"notAfter": {"years": 10**20}}})
@example(spec={"validity": {"notBefore": "9999-12-31T23:59:59-12:00", "notAfter": {"days": 1}}})
@example(spec={"validity": {"notAfter": "2049-12-31T23:59:59Z"}, "serialNumber": 2**159 - 1})
@example(
    spec={"validity": {"notAfter": {"weeks": 1}}, "extensions": [{"basicConstraints": {"CA": False, "pathLen": 0}}]}
)
def test_certificate_specs_get_201_or_a_400_naming_the_field(client: Any, spec: dict[str, Any]) -> None:
    r = post_spec(client, json.dumps(spec))
    assert_json_refusal(r, {201, 400})
    if r.status_code == 400:
        assert r.json_body["error"] == "InvalidInput" and r.json_body.get("field") is not None
    else:
        cert = x509.load_pem_x509_certificate(r.json_body["certificate"].encode())
        assert cert.issuer == cert.subject and r.json_body["ca_cert"].startswith("specs:")


@fuzz(150)
@given(value=json_values)
@example(value=float("nan"))
@example(value={"validity": {"notAfter": {"seconds": float("nan")}}})
def test_any_json_document_as_a_spec_gets_a_reason(client: Any, value: Any) -> None:
    r = post_spec(client, json.dumps(value))
    assert_json_refusal(r, {201, 400})


@fuzz(120)
@given(
    body=st.binary(max_size=300)
    | st.text(max_size=200).map(str.encode)
    | json_values.map(lambda v: json.dumps(v)[:-1].encode())
)
@example(body=b"\xef\xbb\xbf{}")
@example(body=b'{"validity": 1' + b"[" * 5000)
@example(body=b"[" * 900 + b"]" * 900)
def test_any_bytes_as_a_spec_get_a_reason(client: Any, body: bytes) -> None:
    r = client.http.put("/specs/x509/self-signed", headers=auth(), body=body)
    assert_json_refusal(r, {201, 400})


@pytest.mark.parametrize(
    "method, path", [("PUT", "/specs/x509/self-signed"), ("PUT", "/tenants/specs"), ("POST", "/tokens")]
)
def test_deeply_nested_json_is_a_400(client: Any, method: str, path: str) -> None:
    body = b"[" * 2000 + b"]" * 2000
    r = client.http.request(method, path, headers=auth(), body=body)
    assert_json_refusal(r, {400})


config_bodies = st.fixed_dictionaries(
    {},
    optional={
        "seacat": or_junk(st.booleans()),
        "manualApproval": or_junk(st.booleans()),
        "approveRenewals": or_junk(st.booleans()),
        "lifetimeDays": or_junk(st.integers(-5, 5000)),
        "webhookTimeout": or_junk(st.floats(0, 30)),
        # never a reachable host: the tenant is not enrolled into, and 127.0.0.1:9 has no server
        "approve": or_junk(st.sampled_from(["http://127.0.0.1:9/hook", "ftp://127.0.0.1/", "http:///x", "https://"])),
        "publicBaseUrl": or_junk(st.sampled_from(["https://pki.example.com/", "javascript:alert(1)", "http://"])),
        "privateKey": or_junk(
            st.sampled_from(["", "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", "x" * 20000])
            | st.text(max_size=100)
        ),
        "colour": json_values,
    },
)


@fuzz(100)
@given(tenant=st.sampled_from(["cfg-a", "cfg-b"]), body=config_bodies)
def test_tenant_configuration_bodies_get_a_reason(client: Any, tenant: str, body: dict[str, Any]) -> None:
    r = client.http.put(f"/tenants/{tenant}", headers=auth(), body=json.dumps(body))
    assert_json_refusal(r, {200, 201, 400, 409})


# -- PEM bodies: PUT /{tenant}/seacat/nginx_authenticate ----------------------------------------------


@pytest.fixture(scope="module")
def gateway(env: dict[str, Any], client: Any) -> dict[str, Any]:
    """Two enrolled identities of tenant fuzz and the tenant's CA key, to forge with."""
    import boto3

    enrolled = []
    for key in KEYS[:2]:
        r = client.http.put("/fuzz/seacat/enroll", headers=OCTET, body=build_cr(key, application="gw"))
        assert r.status_code == 200
        enrolled.append(x509.load_der_x509_certificate(r.body))
    pem = boto3.client("secretsmanager").get_secret_value(SecretId="seacat/test/fuzz/ca-key")["SecretString"]
    ca_key = serialization.load_pem_private_key(pem.encode(), None)
    return {"certs": enrolled, "ca_key": ca_key, "ca": env["fuzz_ca"]}


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)
ED_KEY = ed25519.Ed25519PrivateKey.generate()
P384_KEY = ec.generate_private_key(ec.SECP384R1())


@st.composite
def forged_certificates(draw: st.DrawFn, gw: dict[str, Any]) -> tuple[x509.Certificate, bool]:
    """Certificates with drawn properties; returns (certificate, signed by the real CA for an enrolled key)."""
    now = datetime.now(UTC)
    subject_key_kind = draw(st.sampled_from(["enrolled", "enrolled", "unknown", "rsa", "ed25519", "p384"]))
    subject_key = {
        "enrolled": KEYS[0],
        "unknown": OTHER_KEY,
        "rsa": RSA_KEY,
        "ed25519": ED_KEY,
        "p384": P384_KEY,
    }[subject_key_kind]
    signer = draw(st.sampled_from(["ca", "ca", "other", "self"]))
    start = now + timedelta(days=draw(st.integers(-800, 5)))
    end = start + timedelta(days=draw(st.integers(1, 900)))
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(
                        NameOID.COMMON_NAME, draw(st.text(string.ascii_uppercase + "234567", min_size=1, max_size=20))
                    )
                ]
            )
        )
        .issuer_name(
            gw["ca"].subject if signer != "self" else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self")])
        )
        .public_key(subject_key.public_key())
        .serial_number(draw(st.integers(1, 2**159 - 1)))
        .not_valid_before(start)
        .not_valid_after(end)
    )
    if draw(st.booleans()):
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(
                [draw(st.sampled_from([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]))]
            ),
            critical=draw(st.booleans()),
        )
    if draw(st.booleans()):
        builder = builder.add_extension(x509.BasicConstraints(ca=draw(st.booleans()), path_length=None), critical=True)
    if draw(st.booleans()):
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(gw["ca_key"].public_key()), critical=False
        )
    key = {"ca": gw["ca_key"], "other": OTHER_KEY, "self": subject_key}[signer]
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = builder.sign(key, algorithm)
    return cert, signer == "ca" and subject_key_kind == "enrolled" and start <= now < end


def pem_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@st.composite
def pem_bodies(draw: st.DrawFn, gw: dict[str, Any]) -> tuple[bytes, bool, bool]:
    """(body, must pass (what NGINX sends for an enrolled certificate), may pass)."""
    kind = draw(st.sampled_from(["enrolled", "forged", "forged", "mangled", "mangled", "binary", "text", "der"]))
    if kind == "enrolled":
        cert = draw(st.sampled_from(gw["certs"]))
        body = pem_of(cert)
        style = draw(st.sampled_from(["plain", "tabs", "crlf", "junk-after", "junk-before"]))
        body = {
            "plain": body,
            "tabs": body.replace(b"\n", b"\n\t").rstrip(b"\t"),
            "crlf": body.replace(b"\n", b"\r\n"),
            "junk-after": body + draw(st.binary(max_size=40)),
            "junk-before": draw(st.binary(max_size=40)) + body,
        }[style]
        return body, style in ("plain", "tabs", "crlf"), True
    if kind == "forged":
        cert, valid = draw(forged_certificates(gw))
        return pem_of(cert), False, valid
    if kind == "der":
        return draw(st.sampled_from(gw["certs"])).public_bytes(serialization.Encoding.DER), True, True
    if kind == "mangled":
        body = bytearray(pem_of(draw(st.sampled_from(gw["certs"]))))
        for _ in range(draw(st.integers(1, 3))):
            if not body:
                break
            i = draw(st.integers(0, len(body) - 1))
            op = draw(st.sampled_from(["char", "cut", "label", "insert"]))
            if op == "char":
                body[i] = ord(draw(st.sampled_from(list("A/+=-\n\t \x00\xff"))))
            elif op == "cut":
                del body[i:]
            elif op == "label":
                body = bytearray(
                    bytes(body).replace(
                        b"CERTIFICATE",
                        draw(st.sampled_from([b"PRIVATE KEY", b"X509 CRL", b"CERT", b"CERTIFICATE REQUEST"])),
                        1,
                    )
                )
            else:
                body[i:i] = draw(st.binary(max_size=10))
        return bytes(body), False, True
    if kind == "binary":
        return draw(st.binary(max_size=500)), False, False
    return draw(st.text(max_size=300)).encode("utf-8"), False, False


verify_headers = st.sampled_from(
    [None, "SUCCESS", " SUCCESS ", "NONE", "FAILED:certificate has expired", "success", ""]
) | st.text(max_size=30)


def test_nginx_authenticate_answers_only_200_401_403(client: Any, gateway: dict[str, Any]) -> None:
    @fuzz(300)
    @given(
        case=pem_bodies(gateway),
        verify=verify_headers,
        content_type=st.sampled_from(
            [
                "text/plain",
                "application/json",
                "application/x-pem-file",
                "application/octet-stream",
                "multipart/form-data",
            ]
        ),
    )
    def check(case: tuple[bytes, bool, bool], verify: str | None, content_type: str) -> None:
        body, must_pass, may_pass = case
        headers = {"Content-Type": content_type}
        if verify is not None:
            headers["X-SSL-Client-Verify"] = verify
        r = client.http.put("/fuzz/seacat/nginx_authenticate", headers=headers, body=body)
        assert r.status_code in (200, 401, 403), (r.status_code, r.body[:200])
        assert r.body.strip(), "a verdict without a reason"
        if r.status_code == 200:
            assert may_pass, body[:200]
            assert verify is not None and verify.strip() == "SUCCESS"
            assert r.headers["X-SeaCat-Identity"] in {identity_of(c.public_key()) for c in gateway["certs"]}
        else:
            assert "X-SeaCat-Identity" not in r.headers and r.headers["Cache-Control"] == "no-store"
        if must_pass and verify == "SUCCESS":
            assert r.status_code == 200, r.body
        if verify is None:  # NGINX always sends it: its absence fails closed
            assert r.status_code == 401, r.body

    check()


def test_nginx_authenticate_oversized_or_foreign_tenant(client: Any, gateway: dict[str, Any]) -> None:
    good = pem_of(gateway["certs"][0])
    for body in (good + b"\n" * (16 * 1024), b"A" * (1024 * 1024)):
        r = client.http.put("/fuzz/seacat/nginx_authenticate", headers={"X-SSL-Client-Verify": "SUCCESS"}, body=body)
        assert r.status_code == 401 and b"too large" in r.body
    for tenant in ("nobody", "specs", "x", "%2e%2e", "fuzz%00"):
        r = client.http.put(
            f"/{tenant}/seacat/nginx_authenticate", headers={"X-SSL-Client-Verify": "SUCCESS"}, body=good
        )
        assert r.status_code == 403, (tenant, r.status_code)


# -- path parameters: tenant, identity, certificate and request ids, token ids -----------------------

segment_text = st.text(st.characters(codec="utf-8"), max_size=70) | st.sampled_from(
    [
        "",
        ".",
        "..",
        "fuzz",
        "FUZZ",
        "fuzz ",
        " fuzz",
        "fuzz\n",
        "a",
        "a" * 64,
        "a" * 65,
        "paths",
        "paths:",
        "HDKXPDREZADFK4G2",
        "HDKXPDREZADFK4G2\n",
        "hdkxpdrezadfk4g2",
        "AAAAAAAAAAAAAAA1",
        "0" * 96,
        "F" * 96,
        "paths:" + "0" * 96,
        "fuzz:" + "0" * 96,
        "0" * 95,
        "0" * 97,
        "operator",
        "ffffffffffffffff",
        "\x00",
        "%00",
        "%2F",
        "null",
        "undefined",
        "-1",
        "1e309",
        "\u202e",
        "\ud7ff",
        "x" * 3000,
    ]
)


def encode_segment(value: str, raw: bool) -> str:
    """Percent-encode (as a client must), or send decoded (what API Gateway hands the function)."""
    if not raw:
        return quote(value, safe="")
    return "".join(ch if ch not in "/?#;%" else quote(ch, safe="") for ch in value)


PATH_ROUTES: list[tuple[str, str, bool, str]] = [
    # (method, template, needs the token, error family)
    ("GET", "/tenants/{tenant}", True, "json"),
    ("GET", "/{tenant}/x509/ca", False, "json"),
    ("GET", "/{tenant}/x509/crl", False, "json"),
    ("GET", "/{tenant}/x509/crl/{ca_id}", False, "json"),
    ("GET", "/{tenant}/x509/cert/{cert_id}", True, "json"),
    ("PUT", "/{tenant}/x509/cert/{cert_id}/revoke", True, "json"),
    ("GET", "/{tenant}/seacat/get/{identity}", False, "text"),
    ("GET", "/{tenant}/seacat/cr", True, "json"),
    ("GET", "/{tenant}/seacat/cr/{cr_id}", True, "json"),
    ("PUT", "/{tenant}/seacat/cr/{cr_id}/approve", True, "json"),
    ("PUT", "/{tenant}/seacat/cr/{cr_id}/reject", True, "json"),
    ("GET", "/{tenant}/seacat/identity/{identity}", True, "json"),
    ("GET", "/{tenant}/seacat/identity/{identity}/certificates", True, "json"),
    ("PUT", "/{tenant}/seacat/identity/{identity}/block", True, "json"),
    ("PUT", "/{tenant}/seacat/identity/{identity}/unblock", True, "json"),
    ("PUT", "/{tenant}/seacat/identity/{identity}/revoke", True, "json"),
    ("PUT", "/{tenant}/seacat/enroll", False, "text"),
    ("DELETE", "/tokens/{token_id}", True, "json"),
]


@fuzz(300)
@given(
    route=st.sampled_from(PATH_ROUTES),
    values=st.fixed_dictionaries(
        {
            "tenant": segment_text,
            "identity": segment_text,
            "cert_id": segment_text,
            "ca_id": segment_text,
            "cr_id": segment_text,
            "token_id": segment_text,
        }
    ),
    raw=st.booleans(),
    query=st.sampled_from(
        [
            "",
            "?limit=0",
            "?limit=101",
            "?limit=-1",
            "?limit=1e3",
            "?next=@@",
            "?next=e30",
            "?state=issued",
            "?limit=%00",
        ]
    ),
)
def test_path_parameters_get_a_4xx_with_a_reason(
    client: Any, route: tuple[str, str, bool, str], values: dict[str, str], raw: bool, query: str
) -> None:
    method, template, token, family = route
    assume(values["token_id"] not in ("00000000000000f1", "operator"))  # keep the module's operator token
    path = template
    for name, value in values.items():
        path = path.replace("{" + name + "}", encode_segment(value, raw))
    headers = auth() if token else ({"Content-Type": "application/octet-stream"} if method == "PUT" else {})
    r = client.http.request(method, path + query, headers=headers, body=b"")
    # 2xx only where the drawn values happen to name something real (tenant "paths", an empty page...)
    allowed = {200, 400, 403, 404, 405, 409} if family == "json" else {400, 403, 404}
    if family == "json":
        assert_json_refusal(r, allowed)
    else:
        assert_text_refusal(r, allowed)


# -- oversized bodies are refused before they are parsed ---------------------------------------------


class Spy:
    def __init__(self, target: Callable[..., Any]) -> None:
        self.target = target
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.target(*args, **kwargs)


@pytest.mark.parametrize("size", [16 * 1024 + 1, 1024 * 1024, 6 * 1024 * 1024])
def test_oversized_crs_are_413_before_decoding(client: Any, monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    from chalicelib.service import enrollment

    spy = Spy(enrollment.decode_cr)
    monkeypatch.setattr(enrollment, "decode_cr", spy)
    body = build_cr(KEYS[0], application="a" * 10) + b"\x00" * size
    r = client.http.put("/fuzz/seacat/enroll", headers=OCTET, body=body)
    assert_text_refusal(r, {413})
    assert spy.calls == 0
    ok = client.http.put("/fuzz/seacat/enroll", headers=OCTET, body=build_cr(KEYS[0], application="a"))
    assert ok.status_code == 200 and spy.calls == 1  # the spy does see a body it may parse


JSON_BODY_ROUTES = [
    ("PUT", "/tenants/fuzz"),
    ("PUT", "/specs/x509/self-signed"),
    ("POST", "/tokens"),
    ("PUT", "/fuzz/x509/cert/" + "0" * 96 + "/revoke"),
    ("PUT", "/fuzz/seacat/identity/AAAAAAAAAAAAAAAA/revoke"),
]


@pytest.mark.parametrize("method, path", JSON_BODY_ROUTES)
def test_oversized_json_is_413_before_parsing(
    client: Any, monkeypatch: pytest.MonkeyPatch, method: str, path: str
) -> None:
    from chalicelib.api import media

    class Json:
        loads = Spy(json.loads)

    monkeypatch.setattr(media, "json", Json)
    body = json.dumps({"subject": {"CN": "x" * (64 * 1024)}}).encode()
    r = client.http.request(method, path, headers=auth(), body=body)
    assert_json_refusal(r, {413})
    assert r.json_body["field"] == "body" and Json.loads.calls == 0
    # just under the limit is parsed (and refused for what it says, not for its size)
    r = client.http.request(method, path, headers=auth(), body=b" " * (64 * 1024 - 2) + b"{}")
    assert r.status_code != 413 and Json.loads.calls == 1


# -- a tenant's CA list lives in one DynamoDB item (400 KB at most): bounded in number and size ------------

BIG_SPEC = json.loads(REFERENCE_SPEC)
BIG_SPEC["extensions"].append(
    # a ~57 KB CA, under 64 KiB of JSON (long CRL URLs: a tenant CA may not carry URI names)
    {"crlDistributionPoints": [f"https://pki.example/{i}/" + "a" * 1990 for i in range(28)]}
)


def test_an_oversized_ca_is_a_400(client: Any) -> None:
    assert client.http.put("/tenants/big", headers=auth(), body="{}").status_code == 201
    r = client.http.put("/big/x509/self-signed", headers=auth(), body=json.dumps(BIG_SPEC))
    assert_json_refusal(r, {400})
    assert r.json_body["field"] == "body"
    assert client.http.get("/tenants/big", headers=auth()).json_body["caCertificates"] == []


def test_a_full_ca_list_is_a_409_and_leaves_the_state_whole(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    from chalicelib.service import cas as service

    monkeypatch.setattr(service, "MAX_CA_CERTIFICATES", 3)  # the real bound (32) the same way, faster
    assert client.http.put("/tenants/full", headers=auth(), body="{}").status_code == 201
    answers = [client.http.put("/full/x509/self-signed", headers=auth(), body=REFERENCE_SPEC) for _ in range(4)]
    assert [r.status_code for r in answers] == [201, 201, 201, 409]
    assert answers[-1].json_body["error"] == "Conflict" and "Retry-After" not in answers[-1].headers
    created = [r.json_body["_id"] for r in answers[:3]]
    tenant = client.http.get("/tenants/full", headers=auth()).json_body
    assert [ca.split(":", 1)[1] for ca in tenant["caCertificates"]] == created
    items = boto3.client("dynamodb").scan(TableName="seacat-test-certificates")["Items"]
    stored = {i["cert_id"]["S"] for i in items if i["tenant_id"]["S"] == "full" and i["kind"]["S"] == "ca"}
    assert stored == set(created)  # the refused CA was not stored either


def test_the_bounds_fit_one_item() -> None:
    from chalicelib.service import cas as service

    assert service.MAX_CA_CERTIFICATES * service.MAX_CA_DER < 300 * 1024  # of DynamoDB's 400 KB per item


def test_an_unusable_san_email_is_a_400(client: Any) -> None:
    spec = json.loads(REFERENCE_SPEC)
    spec["extensions"].append({"subjectAltName": [{"email": "a@)b.c"}]})
    r = post_spec(client, json.dumps(spec))
    assert_json_refusal(r, {400})
