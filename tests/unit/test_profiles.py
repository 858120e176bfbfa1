"""Certificate profiles (chalicelib/ca/profiles.py) and a CSR checked against one (chalicelib/ca/csr.py): pure."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.ca import csr as csrmod
from chalicelib.ca.profiles import Profile, parse_profile, seacat_profile
from chalicelib.errors import InvalidInput

EC_KEY = ec.generate_private_key(ec.SECP256R1())


def make_csr(
    key: Any = EC_KEY,
    subject: list[tuple[x509.ObjectIdentifier, str]] | None = None,
    sans: list[x509.GeneralName] | None = None,
    extensions: list[tuple[x509.ExtensionType, bool]] | None = None,
) -> x509.CertificateSigningRequest:
    attrs = [(NameOID.COMMON_NAME, "r1")] if subject is None else subject
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs])
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    for ext, critical in extensions or []:
        builder = builder.add_extension(ext, critical=critical)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


def fails(field: str, fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(InvalidInput) as caught:
        fn(*args, **kwargs)
    assert caught.value.field == field, caught.value.message
    return caught.value.message


ROUTERS = parse_profile(
    "routers",
    {
        "keyTypes": ["P-256", "RSA", "Ed25519"],
        "extendedKeyUsage": ["clientAuth", "serverAuth"],
        "keyUsage": ["digitalSignature", "keyEncipherment", "keyAgreement"],
        "sans": {
            "dns": ["*.dev.example.com", "**.fleet.example.com", "gw.example.com"],
            "uri": ["spiffe://example.org/ns/*/sa/*", "urn-x://example.org/**"],
            "email": ["*@example.com"],
            "ip": ["10.0.0.0/8", "2001:db8::/32"],
        },
    },
)


# -- parsing ------------------------------------------------------------------------------------


def test_defaults_and_stored_form_round_trip() -> None:
    profile = parse_profile("p1", {})
    assert profile.key_types == ("P-256", "P-384", "Ed25519")
    assert profile.ekus == ("clientAuth",) and profile.key_usages == ("digitalSignature",)
    assert profile.subject.mode == "csr" and profile.subject.required == ("CN",)
    assert profile.lifetime_hours is None and profile.approval is None and profile.sans == ()
    for original in (profile, ROUTERS, parse_profile("t", {"subject": {"mode": "template", "template": [{"O": "X"}]}})):
        assert Profile.from_json(original.to_json()) == original
    assert parse_profile("d", {"lifetimeDays": 2}).lifetime_hours == 48
    # patterns are normalised (case, CIDR form) and duplicates dropped
    odd = parse_profile("n", {"sans": {"dns": ["GW.Example.COM", "gw.example.com"], "ip": ["10.1.0.0/16"]}})
    assert odd.sans == (("dns", ("gw.example.com",)), ("ip", ("10.1.0.0/16",)))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"nope": 1}, "nope"),
        ({"keyTypes": ["P-256", "DSA"]}, "keyTypes[1]"),
        ({"keyTypes": []}, "keyTypes"),
        ({"keyUsage": ["keyCertSign"]}, "keyUsage[0]"),
        ({"extendedKeyUsage": ["codeSigning"]}, "extendedKeyUsage[0]"),
        ({"extendedKeyUsage": ["clientAuth", "clientAuth"]}, "extendedKeyUsage[1]"),
        ({"rsaMinBits": 1024}, "rsaMinBits"),
        ({"lifetimeHours": 0}, "lifetimeHours"),
        ({"lifetimeHours": True}, "lifetimeHours"),
        ({"lifetimeHours": 2, "lifetimeDays": 1}, "lifetimeDays"),
        ({"sans": {"dns": ["*.com"]}}, "sans.dns[0]"),
        ({"sans": {"dns": ["a.*.example.com"]}}, "sans.dns[0]"),
        ({"sans": {"uri": ["spiffe://*.example.org/x"]}}, "sans.uri[0]"),
        ({"sans": {"uri": ["spiffe://example.org/**/x"]}}, "sans.uri[0]"),
        ({"sans": {"email": ["a*@example.com"]}}, "sans.email[0]"),
        ({"sans": {"ip": ["10.0.0.1/8"]}}, "sans.ip[0]"),
        ({"sans": {"rid": ["x"]}}, "sans.rid"),
        ({"sans": {"dns": ["ok.example.com\n"]}}, "sans.dns[0]"),
        ({"requireSan": True}, "requireSan"),
        ({"approval": "sometimes"}, "approval"),
        ({"subject": {"mode": "csr", "allowed": ["O"], "required": ["CN"]}}, "subject.required[0]"),
        ({"subject": {"mode": "template", "template": [{"CN": "{csr.XX}"}]}}, "subject.template[0].CN"),
        ({"subject": {"mode": "template", "template": [{"CN": "{san.dns}"}]}}, "subject.template.CN"),
        ({"subject": {"mode": "other"}}, "subject.mode"),
        ({"name": "other"}, "name"),
        ({"builtin": True}, "builtin"),
    ],
)
def test_bad_profiles_name_the_field(body: dict[str, Any], field: str) -> None:
    fails(field, parse_profile, "p1", body)


@pytest.mark.parametrize("name", ["", "Upper", "-x", "a" * 64, "seacat", "a b"])
def test_bad_names(name: str) -> None:
    fails("name", parse_profile, name, {})


def test_seacat_profile_is_the_seacat_client_profile() -> None:
    profile = seacat_profile(365)
    assert profile.builtin and profile.key_types == ("P-256",) and profile.ekus == ("clientAuth",)
    assert profile.lifetime_hours == 365 * 24 and profile.to_json()["builtin"] is True
    fails("profile", csrmod.plan, profile, make_csr())


# -- SAN patterns -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        (x509.DNSName("r1.dev.example.com"), True),
        (x509.DNSName("R1.Dev.Example.com"), True),
        (x509.DNSName("a.r1.dev.example.com"), False),  # * is one label
        (x509.DNSName("dev.example.com"), False),
        (x509.DNSName("x.y.fleet.example.com"), True),  # ** is one or more
        (x509.DNSName("fleet.example.com"), False),
        (x509.DNSName("gw.example.com"), True),
        (x509.DNSName("gw.example.com.evil.org"), False),
        (x509.DNSName("*.dev.example.com"), False),  # no wildcard certificates
        (x509.UniformResourceIdentifier("spiffe://example.org/ns/prod/sa/api"), True),
        (x509.UniformResourceIdentifier("spiffe://EXAMPLE.org/ns/prod/sa/api"), True),
        (x509.UniformResourceIdentifier("spiffe://example.org/ns/prod/sa/api/x"), False),
        (x509.UniformResourceIdentifier("spiffe://example.org/ns//sa/api"), False),
        (x509.UniformResourceIdentifier("spiffe://example.org.evil/ns/a/sa/b"), False),
        (x509.UniformResourceIdentifier("urn-x://example.org/a/b/c"), True),
        (x509.UniformResourceIdentifier("urn-x://example.org"), True),
        (x509.UniformResourceIdentifier("urn-x://example.organic/a"), False),
        (x509.RFC822Name("ops@example.com"), True),
        (x509.RFC822Name("ops@sub.example.com"), False),
        (x509.IPAddress(ipaddress.ip_address("10.2.3.4")), True),
        (x509.IPAddress(ipaddress.ip_address("11.2.3.4")), False),
        (x509.IPAddress(ipaddress.ip_address("2001:db8::1")), True),
        (x509.IPAddress(ipaddress.ip_address("2001:db9::1")), False),
    ],
)
def test_san_patterns(name: x509.GeneralName, ok: bool) -> None:
    csr = make_csr(sans=[name])
    if ok:
        assert csrmod.plan(ROUTERS, csr).sans == (name,)
    else:
        message = fails("subjectAltName[0]", csrmod.plan, ROUTERS, csr)
        assert "routers" in message or "wildcards are never issued" in message


def test_no_pattern_of_a_kind_admits_none_of_it() -> None:
    dns_only = parse_profile("d", {"sans": {"dns": ["*.example.com"]}})
    message = fails(
        "subjectAltName[1]",
        csrmod.plan,
        dns_only,
        make_csr(sans=[x509.DNSName("a.example.com"), x509.RFC822Name("a@example.com")]),
    )
    assert "no email SANs allowed" in message
    fails(
        "subjectAltName",
        csrmod.plan,
        parse_profile("m", {"sans": {"dns": ["*.example.com"]}, "maxSans": 1}),
        make_csr(sans=[x509.DNSName("a.example.com"), x509.DNSName("b.example.com")]),
    )
    fails(
        "subjectAltName",
        csrmod.plan,
        parse_profile("r", {"sans": {"dns": ["*.example.com"]}, "requireSan": True}),
        make_csr(),
    )


def test_a_device_supplied_name_is_quoted_printable_and_bounded() -> None:
    message = fails("subjectAltName[0]", csrmod.plan, ROUTERS, make_csr(sans=[x509.DNSName("x" * 200 + ".org")]))
    assert len(message) < 250 and "..." in message


# -- keys, signature, subject, extensions ------------------------------------------------------


def test_key_types() -> None:
    assert csrmod.plan(ROUTERS, make_csr(rsa.generate_private_key(65537, 2048))).key_type == "RSA-2048"
    assert csrmod.plan(ROUTERS, make_csr(ed25519.Ed25519PrivateKey.generate())).key_type == "Ed25519"
    message = fails("publicKey", csrmod.plan, ROUTERS, make_csr(ec.generate_private_key(ec.SECP384R1())))
    assert "P-384" in message
    fails("publicKey", csrmod.plan, parse_profile("e", {}), make_csr(rsa.generate_private_key(65537, 2048)))
    strict = parse_profile("s", {"keyTypes": ["RSA"], "rsaMinBits": 3072})
    fails("publicKey", csrmod.plan, strict, make_csr(rsa.generate_private_key(65537, 2048)))


def test_proof_of_possession() -> None:
    good = make_csr().public_bytes(serialization.Encoding.DER)
    # flip a bit of the signature (the DER's last bytes): the CSR parses, its signature fails
    tampered = csrmod.load_csr(good[:-2] + bytes([good[-2] ^ 1]) + good[-1:])
    fails("signature", csrmod.plan, ROUTERS, tampered)


def test_load_csr_pem_der_and_garbage() -> None:
    csr = make_csr()
    der = csr.public_bytes(serialization.Encoding.DER)
    pem = csr.public_bytes(serialization.Encoding.PEM)
    assert csrmod.load_csr(der) == csrmod.load_csr(pem) == csr
    new_pem = pem.replace(b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST")
    assert csrmod.load_csr(new_pem) == csr
    for junk in (
        b"",
        b"hello",
        b"-----BEGIN CERTIFICATE REQUEST-----\n!!\n-----END CERTIFICATE REQUEST-----",
        b"0" * 20000,
    ):
        fails("csr", csrmod.load_csr, junk)


def test_a_bad_version_or_an_unknown_key_algorithm_is_a_named_400() -> None:
    der = make_csr().public_bytes(serialization.Encoding.DER)
    version = der.index(b"\x02\x01\x00")  # CertificationRequestInfo's version, v1 (0)
    fails("csr", csrmod.load_csr, der[:version] + b"\x02\x01\x01" + der[version + 3 :])
    ec_public_key = bytes.fromhex("06072a8648ce3d0201")  # id-ecPublicKey
    at = der.index(ec_public_key)
    unknown = der[:at] + bytes.fromhex("0607008648ce3d0201") + der[at + len(ec_public_key) :]
    fails("publicKey", csrmod.plan, ROUTERS, csrmod.load_csr(unknown))


def test_subject_from_the_csr() -> None:
    plan = csrmod.plan(ROUTERS, make_csr(subject=[(NameOID.COMMON_NAME, "r1"), (NameOID.ORGANIZATION_NAME, "Acme")]))
    assert plan.subject.rfc4514_string() == "O=Acme,CN=r1"
    fails("subject.CN", csrmod.plan, ROUTERS, make_csr(subject=[(NameOID.ORGANIZATION_NAME, "Acme")]))
    fails("subject.UID", csrmod.plan, ROUTERS, make_csr(subject=[(NameOID.COMMON_NAME, "a"), (NameOID.USER_ID, "u")]))
    fails("subject.CN", csrmod.plan, ROUTERS, make_csr(subject=[(NameOID.COMMON_NAME, "a\x07b")]))
    fails(
        "subject.CN", csrmod.plan, ROUTERS, make_csr(subject=[(NameOID.COMMON_NAME, "a"), (NameOID.COMMON_NAME, "b")])
    )
    fails(
        "subject.2.5.4.12", csrmod.plan, ROUTERS, make_csr(subject=[(NameOID.COMMON_NAME, "a"), (NameOID.TITLE, "t")])
    )


def test_subject_template() -> None:
    profile = parse_profile(
        "t",
        {
            "subject": {
                "mode": "template",
                "template": [{"O": "Acme Devices"}, {"CN": "dev-{csr.CN}"}, {"OU": "{san.dns}"}],
            },
            "sans": {"dns": ["*.example.com"]},
        },
    )
    plan = csrmod.plan(profile, make_csr(sans=[x509.DNSName("a.example.com")]))
    assert plan.subject.rfc4514_string() == "OU=a.example.com,CN=dev-r1,O=Acme Devices"
    fails(
        "subject.O",
        csrmod.plan,
        profile,
        make_csr(
            subject=[(NameOID.COMMON_NAME, "r"), (NameOID.ORGANIZATION_NAME, "Evil")],
            sans=[x509.DNSName("a.example.com")],
        ),
    )
    fails("subjectAltName", csrmod.plan, profile, make_csr())
    fails("subject.CN", csrmod.plan, profile, make_csr(subject=[], sans=[x509.DNSName("a.example.com")]))


def test_key_usage_and_eku() -> None:
    plan = csrmod.plan(ROUTERS, make_csr())
    assert plan.ekus == (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH)
    # EC key: keyEncipherment is not for it; keyAgreement is
    assert plan.key_usage.digital_signature and plan.key_usage.key_agreement and not plan.key_usage.key_encipherment
    rsa_plan = csrmod.plan(ROUTERS, make_csr(rsa.generate_private_key(65537, 2048)))
    assert rsa_plan.key_usage.key_encipherment and not rsa_plan.key_usage.key_agreement
    server_only = make_csr(extensions=[(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)])
    assert csrmod.plan(ROUTERS, server_only).ekus == (ExtendedKeyUsageOID.SERVER_AUTH,)
    client_profile = parse_profile("c", {})
    fails("extendedKeyUsage[0]", csrmod.plan, client_profile, server_only)
    code = make_csr(extensions=[(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)])
    assert "1.3.6.1.5.5.7.3.3" in fails("extendedKeyUsage[0]", csrmod.plan, ROUTERS, code)
    ca_ku = x509.KeyUsage(True, False, False, False, False, True, False, False, False)
    fails("keyUsage", csrmod.plan, ROUTERS, make_csr(extensions=[(ca_ku, True)]))
    encipher = x509.KeyUsage(False, False, True, False, False, False, False, False, False)
    fails("keyUsage", csrmod.plan, ROUTERS, make_csr(extensions=[(encipher, True)]))  # an EC key


def test_other_extensions() -> None:
    fails("basicConstraints", csrmod.plan, ROUTERS, make_csr(extensions=[(x509.BasicConstraints(True, None), True)]))
    assert csrmod.plan(ROUTERS, make_csr(extensions=[(x509.BasicConstraints(False, None), True)]))
    ocsp_nocheck = make_csr(extensions=[(x509.OCSPNoCheck(), False)])
    fails("extensions.1.3.6.1.5.5.7.48.1.5", csrmod.plan, ROUTERS, ocsp_nocheck)


# -- building ----------------------------------------------------------------------------------


def _ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def test_build_certificate_and_validity() -> None:
    ca, ca_key = _ca()
    now = datetime.now(UTC)
    not_before, not_after = csrmod.validity(now, timedelta(days=365), ca_not_after=ca.not_valid_after_utc)
    assert not_after == ca.not_valid_after_utc  # capped by the CA
    assert now - timedelta(minutes=6) < not_before < now
    csr = make_csr(sans=[x509.DNSName("r1.dev.example.com")])
    plan = csrmod.plan(ROUTERS, csr)
    cert = csrmod.build_certificate(
        plan=plan,
        public_key=csr.public_key(),
        issuer=ca,
        issuer_key=ca_key,
        serial=77,
        not_before=not_before,
        not_after=not_after,
        crl_url="https://pki.example.com/t/x509/crl/abc",
        ocsp_url="https://pki.example.com/t/ocsp",
    )
    cert.verify_directly_issued_by(ca)
    assert cert.subject.rfc4514_string() == "CN=r1" and cert.serial_number == 77
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).critical
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert not san.critical and list(san.value) == [x509.DNSName("r1.dev.example.com")]
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name == [x509.UniformResourceIdentifier("https://pki.example.com/t/x509/crl/abc")]
    (ocsp,) = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert ocsp.access_location == x509.UniformResourceIdentifier("https://pki.example.com/t/ocsp")
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    # an empty subject: the SAN extension is critical (RFC 5280 4.2.1.6)
    empty = parse_profile("e", {"subject": {"mode": "csr", "required": []}, "sans": {"dns": ["*.example.com"]}})
    csr2 = make_csr(subject=[], sans=[x509.DNSName("a.example.com")])
    cert2 = csrmod.build_certificate(
        plan=csrmod.plan(empty, csr2),
        public_key=csr2.public_key(),
        issuer=ca,
        issuer_key=ca_key,
        serial=78,
        not_before=not_before,
        not_after=not_after,
    )
    assert cert2.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical


def test_csr_identity_is_apart_from_the_seacat_identity() -> None:
    from chalicelib.seacat.codec import identity_of_public_key

    identity = csrmod.csr_identity(EC_KEY.public_key())
    assert len(identity) == 16 and set(identity) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert identity != identity_of_public_key(EC_KEY.public_key())
    assert identity == csrmod.csr_identity(EC_KEY.public_key())


# -- any input: a profile or InvalidInput, a plan or InvalidInput ------------------------------

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 100_000) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
PROFILE_KEYS = st.sampled_from(
    ["keyTypes", "lifetimeHours", "keyUsage", "extendedKeyUsage", "subject", "sans", "maxSans", "approval", "x"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(PROFILE_KEYS, JSONISH, max_size=4))
def test_any_profile_body_is_a_profile_or_a_named_400(body: dict[str, Any]) -> None:
    try:
        profile = parse_profile("fuzz", body)
    except InvalidInput as exc:
        assert exc.field
        return
    assert Profile.from_json(profile.to_json()) == profile


def _mutations() -> st.SearchStrategy[bytes]:
    der = make_csr(sans=[x509.DNSName("r1.dev.example.com")]).public_bytes(serialization.Encoding.DER)
    return st.tuples(st.integers(0, len(der) - 1), st.integers(0, 255), st.integers(0, 3)).map(
        lambda t: der[: t[0]] + bytes([t[1]]) + der[t[0] + 1 + t[2] :]
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300), _mutations()))
def test_any_csr_bytes_are_a_plan_or_a_named_400(body: bytes) -> None:
    try:
        csrmod.plan(ROUTERS, csrmod.load_csr(body))
    except InvalidInput as exc:
        assert exc.field
