"""Certificate construction: the self-signed tenant CA and the SeaCat client profile."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID, SignatureAlgorithmOID

from chalicelib.ca import builder, keys, spec
from chalicelib.errors import InvalidInput

UTC = UTC
OPENSSL = shutil.which("openssl") or "openssl"
VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "seacat-cr-vectors.json").read_text())
CERT_VECTORS = {v["name"]: v for v in VECTORS["certificate_vectors"]}
CA_KEY = keys.load_ca_private_key_pem(VECTORS["test_private_keys_pem"]["seacat-test-ca"])

# Byte for byte the reference body of PUT /{tenant}/x509/self-signed.
REFERENCE_BODY = """{"serialNumber": 1, "subject": {"O": "My Org", "CN": "Root CA"}, "validity": {"notBefore": "now", "notAfter": { "weeks": 1040 }},
 "extensions": [ { "basicConstraints": {"CA": true, "pathLen": 0}, "critical": true } , { "keyUsage": ["keyCertSign","cRLSign"] } ]}"""
NOW = datetime(2019, 12, 1, 0, 0, 0, tzinfo=UTC)

KU_DIGITAL_SIGNATURE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def reference_ca(now: datetime = NOW, key: ec.EllipticCurvePrivateKey = CA_KEY) -> x509.Certificate:
    return builder.build_self_signed(spec.parse_certificate_spec(json.loads(REFERENCE_BODY), now=now), key)


def vector_cert(name: str) -> x509.Certificate:
    return x509.load_der_x509_certificate(bytes.fromhex(CERT_VECTORS[name]["der_hex"]))


def sample_public_key() -> ec.EllipticCurvePublicKey:
    public_key = vector_cert("client_cert_for_sample").public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    return public_key


def client_cert(
    issuer: x509.Certificate | None = None,
    *,
    not_before: datetime = datetime(2019, 12, 13, tzinfo=UTC),
    not_after: datetime = datetime(2020, 12, 12, 23, 59, 59, tzinfo=UTC),
    crl_url: str | None = None,
) -> x509.Certificate:
    return builder.build_client_certificate(
        public_key=sample_public_key(),
        identity="HDKXPDREZADFK4G2",
        issuer=issuer or reference_ca(),
        issuer_key=CA_KEY,
        serial=0x5EACA7000000000000000000000000001,
        not_before=not_before,
        not_after=not_after,
        crl_url=crl_url,
    )


def ext(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_oid(oid)


# --- self-signed CA -------------------------------------------------------------------


def test_reference_ca_fields() -> None:
    spec.check_client_ca(spec.parse_certificate_spec(json.loads(REFERENCE_BODY), now=NOW), now=NOW)
    cert = reference_ca()
    assert cert.version == x509.Version.v3
    assert cert.serial_number == 1
    assert cert.subject.rfc4514_string() == "CN=Root CA,O=My Org"
    assert [a.oid for a in cert.subject] == [NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME]
    assert cert.issuer == cert.subject
    assert cert.not_valid_before_utc == NOW
    assert cert.not_valid_after_utc == NOW + timedelta(weeks=1040)
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    cert.verify_directly_issued_by(cert)

    bc = ext(cert, ExtensionOID.BASIC_CONSTRAINTS)
    assert bc.value == x509.BasicConstraints(ca=True, path_length=0) and bc.critical
    ku = ext(cert, ExtensionOID.KEY_USAGE)
    assert ku.critical  # our documented default when "critical" is absent (RFC 5280 SHOULD)
    assert ku.value == x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    ski = ext(cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    assert ski.value == x509.SubjectKeyIdentifier.from_public_key(CA_KEY.public_key()) and not ski.critical
    assert [e.oid for e in cert.extensions] == [
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    ]


def test_reference_ca_matches_vector_except_documented_differences() -> None:
    """The vector was made by an independent implementation from the same body and key.

    Differences by design: we always add an SKI, and default keyUsage to critical.
    """
    ours, theirs = reference_ca(), vector_cert("tenant_ca_from_design_json")
    assert ours.public_key() == theirs.public_key()
    assert ours.subject.public_bytes() == theirs.subject.public_bytes()
    assert ours.issuer.public_bytes() == theirs.issuer.public_bytes()
    assert ours.serial_number == theirs.serial_number
    assert ours.not_valid_before_utc == theirs.not_valid_before_utc
    assert ours.not_valid_after_utc == theirs.not_valid_after_utc
    assert ext(ours, ExtensionOID.BASIC_CONSTRAINTS) == ext(theirs, ExtensionOID.BASIC_CONSTRAINTS)
    assert ext(ours, ExtensionOID.KEY_USAGE).value == ext(theirs, ExtensionOID.KEY_USAGE).value
    # Same validity bytes, UTCTime both ends.
    assert b"\x17\x0d191201000000Z\x17\x0d391106000000Z" in ours.tbs_certificate_bytes


def test_self_signed_always_has_ski_and_optional_aki() -> None:
    body = {"subject": {"CN": "X"}, "validity": {"notAfter": {"days": 1}}}
    plain = builder.build_self_signed(spec.parse_certificate_spec(body, now=NOW), CA_KEY)
    assert ext(plain, ExtensionOID.SUBJECT_KEY_IDENTIFIER).value.digest == (  # type: ignore[attr-defined]
        x509.SubjectKeyIdentifier.from_public_key(CA_KEY.public_key()).digest
    )
    with pytest.raises(x509.ExtensionNotFound):
        ext(plain, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    assert 1 << 127 <= plain.serial_number < 1 << 128

    body["extensions"] = [{"subjectKeyIdentifier": "hash"}, {"authorityKeyIdentifier": {}}]
    both = builder.build_self_signed(spec.parse_certificate_spec(body, now=NOW), CA_KEY)
    ski = ext(both, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    aki = ext(both, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    assert isinstance(ski.value, x509.SubjectKeyIdentifier) and isinstance(aki.value, x509.AuthorityKeyIdentifier)
    assert aki.value.key_identifier == ski.value.digest and not aki.critical
    assert aki.value.authority_cert_issuer is None and aki.value.authority_cert_serial_number is None
    assert len([e for e in both.extensions if e.oid == ExtensionOID.SUBJECT_KEY_IDENTIFIER]) == 1


def test_self_signed_rich_extensions_round_trip() -> None:
    """The builder encodes whatever spec it is given; the tenant CA route refuses this one
    (spec.check_client_ca: serverAuth, host SANs, no pathLen, a start in the past)."""
    body = {
        "serialNumber": 2**159 - 1,
        "subject": {"C": "cz", "O": "Org", "DC": ["example", "com"], "emailAddress": "ca@example.com"},
        "validity": {"notBefore": "2020-01-01", "notAfter": "2030-01-01T00:00:00Z"},
        "extensions": [
            {"basicConstraints": {"CA": True}},
            {"keyUsage": ["digitalSignature", "keyCertSign", "cRLSign"]},
            {"extendedKeyUsage": ["serverAuth", "clientAuth", "1.3.6.1.4.1.99999.1"]},
            {
                "subjectAltName": [
                    "DNS:ca.example.com",
                    "IP:10.0.0.1",
                    "IP:::1",
                    "email:ca@example.com",
                    "URI:https://example.com/ca",
                    {"dns": "*.example.com"},
                ]
            },
            {"crlDistributionPoints": ["http://crl.example.com/ca.crl"]},
        ],
    }
    parsed = spec.parse_certificate_spec(body, now=NOW)
    with pytest.raises(InvalidInput):
        spec.check_client_ca(parsed, now=NOW)
    cert = builder.build_self_signed(parsed, CA_KEY)
    cert.verify_directly_issued_by(cert)
    assert cert.serial_number == 2**159 - 1
    assert cert.subject.rfc4514_string() == "1.2.840.113549.1.9.1=ca@example.com,DC=com,DC=example,O=Org,C=CZ"
    san = ext(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    assert isinstance(san, x509.SubjectAlternativeName)
    assert san.get_values_for_type(x509.DNSName) == ["ca.example.com", "*.example.com"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.1", "::1"]
    eku = ext(cert, ExtensionOID.EXTENDED_KEY_USAGE).value
    assert list(eku) == [  # type: ignore[call-overload]
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"),
    ]
    cdp = ext(cert, ExtensionOID.CRL_DISTRIBUTION_POINTS).value
    assert isinstance(cdp, x509.CRLDistributionPoints)
    assert cdp[0].full_name == [x509.UniformResourceIdentifier("http://crl.example.com/ca.crl")]


def test_time_encoding_utctime_until_2049_generalizedtime_from_2050() -> None:
    body = {
        "subject": {"CN": "Long"},
        "validity": {"notBefore": "2049-12-31T23:59:59Z", "notAfter": "2050-01-01T00:00:00Z"},
    }
    cert = builder.build_self_signed(spec.parse_certificate_spec(body, now=NOW), CA_KEY)
    assert cert.not_valid_after_utc == datetime(2050, 1, 1, tzinfo=UTC)
    assert b"\x17\x0d491231235959Z\x18\x0f20500101000000Z" in cert.tbs_certificate_bytes

    body["validity"] = {"notBefore": "2020-01-01", "notAfter": "9999-12-31T23:59:59Z"}
    far = builder.build_self_signed(spec.parse_certificate_spec(body, now=NOW), CA_KEY)
    assert b"\x17\x0d200101000000Z\x18\x0f99991231235959Z" in far.tbs_certificate_bytes


# --- client certificates --------------------------------------------------------------


def test_client_profile() -> None:
    ca = reference_ca()
    cert = client_cert(ca)
    cert.verify_directly_issued_by(ca)
    assert cert.subject == x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "HDKXPDREZADFK4G2")])
    assert cert.issuer == ca.subject
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    assert cert.public_key() == sample_public_key()

    bc = ext(cert, ExtensionOID.BASIC_CONSTRAINTS)
    assert bc.value == x509.BasicConstraints(ca=False, path_length=None) and bc.critical
    ku = ext(cert, ExtensionOID.KEY_USAGE)
    assert ku.value == KU_DIGITAL_SIGNATURE and ku.critical
    eku = ext(cert, ExtensionOID.EXTENDED_KEY_USAGE)
    assert eku.value == x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]) and not eku.critical
    ski = ext(cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    assert ski.value == x509.SubjectKeyIdentifier.from_public_key(sample_public_key()) and not ski.critical
    aki = ext(cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    ca_ski = ext(ca, ExtensionOID.SUBJECT_KEY_IDENTIFIER).value
    assert isinstance(ca_ski, x509.SubjectKeyIdentifier)
    assert aki.value == x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski) and not aki.critical
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, ExtensionOID.CRL_DISTRIBUTION_POINTS)


def test_client_profile_matches_vector() -> None:
    """Issued from the vector's own CA (which has no SKI), our certificate carries exactly the
    vector's fields and extensions, plus the SKI the brief requires."""
    vector_ca = vector_cert("tenant_ca_from_design_json")
    ours, theirs = client_cert(vector_ca), vector_cert("client_cert_for_sample")
    ours.verify_directly_issued_by(vector_ca)
    assert ours.subject.public_bytes() == theirs.subject.public_bytes()
    assert ours.issuer.public_bytes() == theirs.issuer.public_bytes()
    assert ours.serial_number == theirs.serial_number
    assert ours.not_valid_before_utc == theirs.not_valid_before_utc
    assert ours.not_valid_after_utc == theirs.not_valid_after_utc
    assert b"\x17\x0d191213000000Z\x17\x0d201212235959Z" in ours.tbs_certificate_bytes
    for theirs_ext in theirs.extensions:
        assert ext(ours, theirs_ext.oid) == theirs_ext
    assert {e.oid for e in ours.extensions} - {e.oid for e in theirs.extensions} == {
        ExtensionOID.SUBJECT_KEY_IDENTIFIER
    }


def test_client_crl_distribution_point() -> None:
    cert = client_cert(crl_url="https://pki.example.com/acme/x509/crl")
    cdp = ext(cert, ExtensionOID.CRL_DISTRIBUTION_POINTS)
    assert not cdp.critical
    assert cdp.value == x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier("https://pki.example.com/acme/x509/crl")],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


def test_client_last_utctime_second_is_allowed_2050_is_not() -> None:
    cert = client_cert(not_after=builder.LATEST_CLIENT_NOT_AFTER)
    assert b"\x17\x0d491231235959Z" in cert.tbs_certificate_bytes
    with pytest.raises(ValueError, match="2050"):
        client_cert(not_after=datetime(2050, 1, 1, tzinfo=UTC))
    plus_one = timezone(timedelta(hours=1))
    with pytest.raises(ValueError, match="2050"):
        client_cert(not_after=datetime(2050, 1, 1, 1, 0, tzinfo=plus_one))  # = 2050-01-01T00:00Z
    # Compared in UTC: 00:30+01:00 on New Year's day is still 2049 in UTC.
    ok = client_cert(not_after=datetime(2050, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))))
    assert ok.not_valid_after_utc == datetime(2049, 12, 31, 23, 30, tzinfo=UTC)


def test_client_argument_errors() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        client_cert(not_before=datetime(2019, 12, 13))
    with pytest.raises(ValueError, match="after"):
        client_cert(not_before=datetime(2021, 1, 1, tzinfo=UTC))
    ca = reference_ca()
    client_cert(ca)  # the issuer's key is checked once and remembered: a wrong key is still refused
    with pytest.raises(ValueError, match="does not match"):
        builder.build_client_certificate(
            public_key=sample_public_key(),
            identity="X",
            issuer=ca,
            issuer_key=keys.generate_ca_key(),
            serial=5,
            not_before=NOW,
            not_after=NOW + timedelta(days=1),
        )
    for serial in (0, -1, 1 << 159, True):
        with pytest.raises(ValueError, match="serial"):
            builder.build_client_certificate(
                public_key=sample_public_key(),
                identity="X",
                issuer=reference_ca(),
                issuer_key=CA_KEY,
                serial=serial,
                not_before=NOW,
                not_after=NOW + timedelta(days=1),
            )
    with pytest.raises(ValueError, match="identity"):
        builder.build_client_certificate(
            public_key=sample_public_key(),
            identity="",
            issuer=reference_ca(),
            issuer_key=CA_KEY,
            serial=5,
            not_before=NOW,
            not_after=NOW + timedelta(days=1),
        )


def test_openssl_verifies_client_cert_for_client_auth(tmp_path: Path) -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    ca = reference_ca(now)
    not_before, not_after = builder.client_validity(now, 365, ca_not_after=ca.not_valid_after_utc)
    leaf = client_cert(ca, not_before=not_before, not_after=not_after, crl_url="http://pki.example.com/t/x509/crl")
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    attime = str(int((now + timedelta(days=1)).timestamp()))
    result = subprocess.run(
        [
            OPENSSL,
            "verify",
            "-purpose",
            "sslclient",
            "-attime",
            attime,
            "-CAfile",
            str(tmp_path / "ca.pem"),
            str(tmp_path / "leaf.pem"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "leaf.pem: OK" in result.stdout
    # And openssl refuses it outside its validity: the check is real.
    late = str(int((not_after + timedelta(days=1)).timestamp()))
    expired = subprocess.run(
        [
            OPENSSL,
            "verify",
            "-purpose",
            "sslclient",
            "-attime",
            late,
            "-CAfile",
            str(tmp_path / "ca.pem"),
            str(tmp_path / "leaf.pem"),
        ],
        capture_output=True,
        text=True,
    )
    assert expired.returncode != 0


# --- validity, serials, ids, renewal ----------------------------------------------------


def test_client_validity_backdates_and_truncates() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, 987654, tzinfo=UTC)
    nb, na = builder.client_validity(now, 365)
    assert nb == datetime(2024, 5, 1, 11, 0, 0, tzinfo=UTC)
    assert na == nb + timedelta(days=365)
    nb2, _ = builder.client_validity(now, 1, backdate=timedelta(0))
    assert nb2 == datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def test_client_validity_accepts_other_offsets() -> None:
    now = datetime(2024, 5, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    nb, _ = builder.client_validity(now, 10)
    assert nb == datetime(2024, 5, 1, 11, 0, 0, tzinfo=UTC) and nb.utcoffset() == timedelta(0)


def test_client_validity_clamps_to_utctime_and_ca() -> None:
    now = datetime(2045, 1, 1, tzinfo=UTC)
    _, na = builder.client_validity(now, 3650)
    assert na == datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)
    _, na = builder.client_validity(now, 10**9)  # overflow-sized lifetime clamps too
    assert na == builder.LATEST_CLIENT_NOT_AFTER
    ca_end = datetime(2045, 6, 1, 8, 30, 15, 500, tzinfo=UTC)
    _, na = builder.client_validity(now, 365, ca_not_after=ca_end)
    assert na == datetime(2045, 6, 1, 8, 30, 15, tzinfo=UTC)


def test_client_validity_expired_ca_leaves_empty_window_for_caller_to_refuse() -> None:
    now = datetime(2045, 1, 1, tzinfo=UTC)
    nb, na = builder.client_validity(now, 365, ca_not_after=now - timedelta(days=2))
    assert na <= nb < now


@pytest.mark.parametrize(
    "kwargs",
    [
        {"now": datetime(2024, 1, 1), "lifetime_days": 1},
        {"now": NOW, "lifetime_days": 0},
        {"now": NOW, "lifetime_days": True},
        {"now": NOW, "lifetime_days": 1, "backdate": timedelta(seconds=-1)},
        {"now": NOW, "lifetime_days": 1, "ca_not_after": datetime(2030, 1, 1)},
    ],
)
def test_client_validity_argument_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        builder.client_validity(**kwargs)  # type: ignore[arg-type]


def test_random_serial() -> None:
    serials = {builder.random_serial() for _ in range(200)}
    assert len(serials) == 200
    for serial in serials:
        assert 2**63 <= serial < 2**159
        assert serial.bit_length() == 128


def test_certificate_id() -> None:
    der = bytes.fromhex(CERT_VECTORS["client_cert_for_sample"]["der_hex"])
    cid = builder.certificate_id(der)
    assert cid == hashlib.sha384(der).hexdigest() and len(cid) == 96 and cid == cid.lower()


def test_in_renewal_window_half_life() -> None:
    nb = datetime(2024, 1, 1, tzinfo=UTC)
    na = nb + timedelta(days=366)
    half = nb + timedelta(days=183)
    assert not builder.in_renewal_window(nb, na, half)  # strictly after
    assert builder.in_renewal_window(nb, na, half + timedelta(seconds=1))
    assert not builder.in_renewal_window(nb, na, nb)


def test_in_renewal_window_thirty_days() -> None:
    nb = datetime(2024, 1, 1, tzinfo=UTC)
    na = nb + timedelta(days=40)  # half-life (day 20) is later than 30 days before expiry (day 10)
    assert not builder.in_renewal_window(nb, na, nb + timedelta(days=10))
    assert builder.in_renewal_window(nb, na, nb + timedelta(days=10, seconds=1))
    assert builder.in_renewal_window(nb, na, na + timedelta(days=1))  # expired: certainly renew


def test_in_renewal_window_matches_vector_rule() -> None:
    rule = VECTORS["renewal_rule"]["trigger"]
    assert "(notAfter - notBefore)/2" in rule and "30 days" in rule


def test_issued_to_compares_the_whole_key() -> None:
    """Renewal's owner check (an identity is an 80-bit hash of the key, so a colliding key is refused):
    only the certificate's own key matches, not another key, a key of another curve or type."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from chalicelib.ca.issued import issued_to

    der = client_cert().public_bytes(serialization.Encoding.DER)
    assert issued_to(der, sample_public_key())
    assert not issued_to(der, ec.generate_private_key(ec.SECP256R1()).public_key())
    assert not issued_to(der, ec.generate_private_key(ec.SECP384R1()).public_key())
    assert not issued_to(der, rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key())
    assert not issued_to(der, None)
