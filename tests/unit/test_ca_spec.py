"""The JSON certificate spec of PUT /{tenant}/x509/self-signed."""

from __future__ import annotations

import copy
import ipaddress
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.ca import builder, keys
from chalicelib.ca.spec import (
    CA_MAX_BACKDATE,
    CA_MAX_LIFETIME,
    CertificateSpec,
    ExtensionSpec,
    check_client_ca,
    check_client_ca_extensions,
    parse_certificate_spec,
)
from chalicelib.errors import InvalidInput

UTC = UTC
NOW = datetime(2024, 5, 1, 12, 34, 56, 789000, tzinfo=UTC)
NOW_S = NOW.replace(microsecond=0)

REFERENCE_BODY = """{"serialNumber": 1, "subject": {"O": "My Org", "CN": "Root CA"}, "validity": {"notBefore": "now", "notAfter": { "weeks": 1040 }},
 "extensions": [ { "basicConstraints": {"CA": true, "pathLen": 0}, "critical": true } , { "keyUsage": ["keyCertSign","cRLSign"] } ]}"""

KU_NAMES = {
    "digitalSignature": "digital_signature",
    "nonRepudiation": "content_commitment",
    "contentCommitment": "content_commitment",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "keyCertSign": "key_cert_sign",
    "cRLSign": "crl_sign",
    "encipherOnly": "encipher_only",
    "decipherOnly": "decipher_only",
}


def body(**overrides: Any) -> dict[str, Any]:
    """A minimal valid body; overrides replace top-level keys (None deletes)."""
    base: dict[str, Any] = {"subject": {"CN": "Test CA"}, "validity": {"notAfter": {"days": 30}}}
    for key, value in overrides.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def parse(b: object) -> CertificateSpec:
    return parse_certificate_spec(b, now=NOW)


def with_ext(*entries: object) -> CertificateSpec:
    return parse(body(extensions=list(entries)))


def only_ext(*entries: object) -> ExtensionSpec:
    spec = with_ext(*entries)
    assert len(spec.extensions) == 1
    return spec.extensions[0]


def refused(b: object, field: str | None, fragment: str = "") -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        parse(b)
    assert info.value.field == field, info.value.message
    assert fragment in info.value.message
    return info.value


# --- the reference body -----------------------------------------------------------------


def test_reference_body_parses() -> None:
    spec = parse(json.loads(REFERENCE_BODY))
    assert spec.serial_number == 1
    assert spec.subject == x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "My Org"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Root CA"),
        ]
    )
    assert spec.not_before == NOW_S
    assert spec.not_after == NOW_S + timedelta(weeks=1040)
    assert spec.extensions == (
        ExtensionSpec(x509.BasicConstraints(ca=True, path_length=0), True),
        ExtensionSpec(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        ),
    )
    assert not spec.subject_key_identifier and not spec.authority_key_identifier
    assert spec.is_ca


def test_spec_is_frozen() -> None:
    spec = parse(body())
    with pytest.raises(AttributeError):
        spec.serial_number = 2  # type: ignore[misc]


def test_now_must_be_aware_and_is_normalised() -> None:
    with pytest.raises(ValueError):
        parse_certificate_spec(body(), now=datetime(2024, 1, 1))
    spec = parse_certificate_spec(body(), now=datetime(2024, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))))
    assert spec.not_before == datetime(2024, 1, 1, tzinfo=UTC) and spec.not_before.utcoffset() == timedelta(0)


# --- top level and serial ---------------------------------------------------------------


@pytest.mark.parametrize("value", [None, [], "x", 1, 1.0, True])
def test_body_must_be_object(value: object) -> None:
    refused(value, None, "the body must be a JSON object")


def test_unknown_top_level_key() -> None:
    refused(body(issuer={"CN": "x"}), "issuer", "'issuer'")


def test_serial_default_is_random_large() -> None:
    a, b = parse(body()).serial_number, parse(body()).serial_number
    assert a != b
    assert 2**63 <= a < 2**159


@pytest.mark.parametrize("serial", [1, 2**64, 2**159 - 1])
def test_serial_accepted(serial: int) -> None:
    assert parse(body(serialNumber=serial)).serial_number == serial


@pytest.mark.parametrize(
    ("serial", "fragment"),
    [
        (0, "positive"),
        (-5, "positive"),
        (2**159, "20 octets"),
        (True, "integer"),
        (1.0, "integer"),
        ("1", "integer"),
        ([1], "integer"),
        ({}, "integer"),
    ],
)
def test_serial_refused(serial: object, fragment: str) -> None:
    refused(body(serialNumber=serial), "serialNumber", fragment)


# --- subject ----------------------------------------------------------------------------


def test_subject_all_attributes_in_order() -> None:
    subject = {
        "C": "CZ",
        "ST": "Praha",
        "L": "Praha 1",
        "O": "TeskaLabs",
        "OU": "PKI",
        "CN": "Root",
        "emailAddress": "pki@example.com",
        "serialNumber": "ABC-123",
        "DC": ["example", "com"],
        "street": "Main 1",
        "title": "CA",
        "GN": "Jan",
        "givenName": "Jana",
        "SN": "Novak",
        "surname": "Novakova",
        "initials": "JN",
        "pseudonym": "jn",
        "generationQualifier": "Jr.",
        "UID": "jnovak",
        "postalCode": "11000",
        "dnQualifier": "q1",
        "name": "Jan Novak",
    }
    spec = parse(body(subject=subject))
    oids = [attr.oid for attr in spec.subject]
    assert oids == [
        NameOID.COUNTRY_NAME,
        NameOID.STATE_OR_PROVINCE_NAME,
        NameOID.LOCALITY_NAME,
        NameOID.ORGANIZATION_NAME,
        NameOID.ORGANIZATIONAL_UNIT_NAME,
        NameOID.COMMON_NAME,
        NameOID.EMAIL_ADDRESS,
        NameOID.SERIAL_NUMBER,
        NameOID.DOMAIN_COMPONENT,
        NameOID.DOMAIN_COMPONENT,
        NameOID.STREET_ADDRESS,
        NameOID.TITLE,
        NameOID.GIVEN_NAME,
        NameOID.GIVEN_NAME,
        NameOID.SURNAME,
        NameOID.SURNAME,
        NameOID.INITIALS,
        NameOID.PSEUDONYM,
        NameOID.GENERATION_QUALIFIER,
        NameOID.USER_ID,
        NameOID.POSTAL_CODE,
        NameOID.DN_QUALIFIER,
        x509.ObjectIdentifier("2.5.4.41"),
    ]
    # One attribute per RDN, DC values in list order.
    assert all(len(rdn) == 1 for rdn in spec.subject.rdns)
    assert [a.value for a in spec.subject.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)] == ["example", "com"]
    # And it builds: every attribute is encodable.
    cert = builder.build_self_signed(spec, keys.generate_ca_key())
    assert cert.subject == spec.subject


def test_subject_unicode_and_country_normalised() -> None:
    spec = parse(body(subject={"C": "cz", "O": "Žluťoučký kůň", "CN": "Kořenová CA"}))
    assert spec.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "CZ"
    assert spec.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Žluťoučký kůň"


@pytest.mark.parametrize(
    ("subject", "field", "fragment"),
    [
        ({}, "subject", "at least one"),
        ("CN=x", "subject", "JSON object"),
        (["CN", "x"], "subject", "JSON object"),
        ({"XYZ": "x"}, "subject.XYZ", "unknown subject attribute"),
        ({"cn": "x"}, "subject.cn", "unknown subject attribute"),
        ({"CN": ""}, "subject.CN", "empty"),
        ({"CN": "   "}, "subject.CN", "empty"),
        ({"CN": 5}, "subject.CN", "string"),
        ({"CN": None}, "subject.CN", "string"),
        ({"CN": True}, "subject.CN", "string"),
        ({"CN": {"a": "b"}}, "subject.CN", "string"),
        ({"CN": "x" * 65}, "subject.CN", "64"),
        ({"CN": "é" * 40}, "subject.CN", "64"),  # 80 UTF-8 bytes
        ({"CN": "a\x00b"}, "subject.CN", "control"),
        ({"CN": "\ud800"}, "subject.CN", "Unicode"),
        ({"DC": []}, "subject.DC", "empty"),
        ({"DC": ["ok", 3]}, "subject.DC[1]", "string"),
        ({"DC": ["ok", "ü"]}, "subject.DC[1]", "ASCII"),
        ({"C": "CZE"}, "subject.C", "two-letter"),
        ({"C": "C"}, "subject.C", "two-letter"),
        ({"C": "1Z"}, "subject.C", "two-letter"),
        ({"emailAddress": "ü@example.com"}, "subject.emailAddress", "ASCII"),
        ({"serialNumber": "a*b"}, "subject.serialNumber", "letters, digits"),
        ({"dnQualifier": "a_b"}, "subject.dnQualifier", "letters, digits"),
        ({"postalCode": "1" * 41}, "subject.postalCode", "40"),
    ],
)
def test_subject_refused(subject: object, field: str, fragment: str) -> None:
    refused(body(subject=subject), field, fragment)


def test_subject_absent() -> None:
    refused(body(subject=None), "subject", "required")


# --- validity ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("validity", "not_before", "not_after"),
    [
        ({"notBefore": "now", "notAfter": {"weeks": 1040}}, NOW_S, NOW_S + timedelta(weeks=1040)),
        ({"notAfter": {"days": 1}}, NOW_S, NOW_S + timedelta(days=1)),
        ({"notAfter": {"years": 10}}, NOW_S, NOW_S + timedelta(days=3650)),  # a year is 365 days
        ({"notAfter": {"years": 0.5}}, NOW_S, NOW_S + timedelta(days=182, hours=12)),
        (
            {"notAfter": {"days": 1, "hours": 2, "minutes": 3, "seconds": 4.9}},
            NOW_S,
            NOW_S + timedelta(days=1, hours=2, minutes=3, seconds=4),
        ),
        ({"notBefore": {"hours": 1}, "notAfter": {"hours": 1}}, NOW_S + timedelta(hours=1), NOW_S + timedelta(hours=2)),
        (
            {"notBefore": "2024-01-01", "notAfter": "2030-01-01"},
            datetime(2024, 1, 1, tzinfo=UTC),
            datetime(2030, 1, 1, tzinfo=UTC),
        ),
        (
            {"notBefore": "2024-01-01T10:00:00", "notAfter": "2030-01-01T00:00:00Z"},
            datetime(2024, 1, 1, 10, tzinfo=UTC),
            datetime(2030, 1, 1, tzinfo=UTC),
        ),
        (
            {"notBefore": "2024-01-01T10:00:00.999+02:00", "notAfter": {"days": 3650}},
            datetime(2024, 1, 1, 8, tzinfo=UTC),
            datetime(2024, 1, 1, 8, tzinfo=UTC) + timedelta(days=3650),
        ),
        ({"notAfter": "9999-12-31T23:59:59Z"}, NOW_S, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_validity_accepted(validity: dict[str, Any], not_before: datetime, not_after: datetime) -> None:
    spec = parse(body(validity=validity))
    assert (spec.not_before, spec.not_after) == (not_before, not_after)
    assert spec.not_before.tzinfo is UTC and spec.not_after.tzinfo is UTC
    assert spec.not_before.microsecond == 0 and spec.not_after.microsecond == 0


@pytest.mark.parametrize(
    ("validity", "field", "fragment"),
    [
        (None, "validity", "required"),
        ("1y", "validity", "JSON object"),
        ({}, "validity.notAfter", "required"),
        ({"notBefore": "now"}, "validity.notAfter", "required"),
        ({"notAfter": {"days": 1}, "until": 3}, "validity.until", "unknown"),
        ({"notAfter": 86400}, "validity.notAfter", "relative object"),
        ({"notAfter": None}, "validity.notAfter", "relative object"),
        ({"notAfter": "tomorrow"}, "validity.notAfter", "ISO-8601"),
        ({"notAfter": "NOW"}, "validity.notAfter", "ISO-8601"),
        ({"notAfter": "2030-02-30"}, "validity.notAfter", "ISO-8601"),
        ({"notAfter": "10000-01-01"}, "validity.notAfter", "ISO-8601"),
        ({"notAfter": "9999-12-31T23:59:59-01:00"}, "validity.notAfter", "out of range"),
        ({"notAfter": {}}, "validity.notAfter", "at least one"),
        ({"notAfter": {"months": 1}}, "validity.notAfter.months", "unknown time unit"),
        ({"notAfter": {"days": -1}}, "validity.notAfter.days", "non-negative"),
        ({"notAfter": {"days": "1"}}, "validity.notAfter.days", "number"),
        ({"notAfter": {"days": True}}, "validity.notAfter.days", "number"),
        ({"notAfter": {"days": float("nan")}}, "validity.notAfter.days", "finite"),
        ({"notAfter": {"days": float("inf")}}, "validity.notAfter.days", "finite"),
        ({"notAfter": {"years": 8000}}, "validity.notAfter", "9999"),
        ({"notAfter": {"days": 10**12}}, "validity.notAfter", "9999"),
        ({"notAfter": {"weeks": 1e300}}, "validity.notAfter", "9999"),
        ({"notBefore": {"years": 7990}, "notAfter": {"days": 1}}, "validity.notBefore", "9999"),
        ({"notAfter": {"seconds": 0}}, "validity.notAfter", "after validity.notBefore"),
        ({"notAfter": {"seconds": 0.5}}, "validity.notAfter", "after validity.notBefore"),
        ({"notBefore": "2030-01-01", "notAfter": "2029-01-01"}, "validity.notAfter", "after validity.notBefore"),
        ({"notBefore": "2020-01-01", "notAfter": "2021-01-01"}, "validity.notAfter", "past"),
        ({"notBefore": "1949-12-31T23:59:59Z", "notAfter": {"days": 1}}, "validity.notBefore", "1950"),
        ({"notBefore": [], "notAfter": {"days": 1}}, "validity.notBefore", "relative object"),
    ],
)
def test_validity_refused(validity: object, field: str, fragment: str) -> None:
    refused(body(validity=validity), field, fragment)


# --- extensions: structure ----------------------------------------------------------------


def test_no_extensions() -> None:
    assert parse(body()).extensions == ()
    assert parse(body(extensions=[])).extensions == ()
    assert not parse(body()).is_ca


@pytest.mark.parametrize(
    ("extensions", "field", "fragment"),
    [
        ({"keyUsage": ["cRLSign"]}, "extensions", "JSON array"),
        ([["keyUsage"]], "extensions[0]", "JSON object"),
        (["keyUsage"], "extensions[0]", "JSON object"),
        ([{}], "extensions[0]", "names no extension"),
        ([{"critical": True}], "extensions[0]", "names no extension"),
        ([{"keyUsage": ["cRLSign"], "extendedKeyUsage": ["clientAuth"]}], "extensions[0]", "exactly one"),
        ([{"nameConstraints": {}}], "extensions[0].nameConstraints", "unknown extension"),
        (
            [{"keyUsage": ["digitalSignature"]}, {"keyUsage": ["digitalSignature"]}],
            "extensions[1].keyUsage",
            "duplicate",
        ),
        ([{"keyUsage": ["digitalSignature"], "critical": "yes"}], "extensions[0].critical", "true or false"),
        ([{"keyUsage": ["digitalSignature"], "critical": 1}], "extensions[0].critical", "true or false"),
        ([{"keyUsage": ["digitalSignature"]}] * 33, "extensions", "more than"),
    ],
)
def test_extension_structure_refused(extensions: object, field: str, fragment: str) -> None:
    refused(body(extensions=extensions), field, fragment)


# --- basicConstraints --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "critical", "expected", "expected_critical"),
    [
        ({"CA": True, "pathLen": 0}, None, x509.BasicConstraints(ca=True, path_length=0), True),
        ({"CA": True, "pathLen": None}, None, x509.BasicConstraints(ca=True, path_length=None), True),
        ({"CA": True}, False, x509.BasicConstraints(ca=True, path_length=None), False),
        ({"CA": False}, None, x509.BasicConstraints(ca=False, path_length=None), False),
        ({}, True, x509.BasicConstraints(ca=False, path_length=None), True),
        ({"CA": True, "pathLen": 3}, None, x509.BasicConstraints(ca=True, path_length=3), True),
    ],
)
def test_basic_constraints(
    value: dict[str, Any], critical: bool | None, expected: x509.BasicConstraints, expected_critical: bool
) -> None:
    entry: dict[str, Any] = {"basicConstraints": value}
    if critical is not None:
        entry["critical"] = critical
    assert only_ext(entry) == ExtensionSpec(expected, expected_critical)


@pytest.mark.parametrize(
    ("value", "field", "fragment"),
    [
        ({"CA": True, "pathLen": -1}, "extensions[0].basicConstraints.pathLen", "negative"),
        ({"CA": False, "pathLen": 0}, "extensions[0].basicConstraints.pathLen", "CA is true"),
        ({"pathLen": 1}, "extensions[0].basicConstraints.pathLen", "CA is true"),
        ({"CA": True, "pathLen": 1.0}, "extensions[0].basicConstraints.pathLen", "integer"),
        ({"CA": True, "pathLen": True}, "extensions[0].basicConstraints.pathLen", "integer"),
        ({"CA": True, "pathLen": "0"}, "extensions[0].basicConstraints.pathLen", "integer"),
        ({"CA": True, "pathLen": 2**64}, "extensions[0].basicConstraints.pathLen", "too large"),
        ({"CA": "true"}, "extensions[0].basicConstraints.CA", "true or false"),
        ({"CA": 1}, "extensions[0].basicConstraints.CA", "true or false"),
        ({"ca": True}, "extensions[0].basicConstraints.ca", "unknown"),
        (True, "extensions[0].basicConstraints", "JSON object"),
        ([True], "extensions[0].basicConstraints", "JSON object"),
    ],
)
def test_basic_constraints_refused(value: object, field: str, fragment: str) -> None:
    refused(body(extensions=[{"basicConstraints": value}]), field, fragment)


# --- keyUsage ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(KU_NAMES))
def test_key_usage_each_name(name: str) -> None:
    usages = [name, "keyAgreement"] if name in ("encipherOnly", "decipherOnly") else [name]
    entries: list[dict[str, Any]] = [{"keyUsage": usages}]
    if name == "keyCertSign":
        entries.insert(0, {"basicConstraints": {"CA": True}})
    spec = with_ext(*entries)
    ku = spec.extensions[-1]
    assert isinstance(ku.value, x509.KeyUsage) and ku.critical
    expected = {attr: False for attr in set(KU_NAMES.values())}
    for usage in usages:
        expected[KU_NAMES[usage]] = True
    assert ku.value == x509.KeyUsage(**expected)
    # Builds and reads back identically (encipher/decipherOnly need keyAgreement to be readable).
    cert = builder.build_self_signed(spec, keys.generate_ca_key())
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value == ku.value


def test_key_usage_all_nine_bits_and_explicit_non_critical() -> None:
    all_nine = [
        "digitalSignature",
        "nonRepudiation",
        "keyEncipherment",
        "dataEncipherment",
        "keyAgreement",
        "keyCertSign",
        "cRLSign",
        "encipherOnly",
        "decipherOnly",
    ]
    spec = with_ext({"basicConstraints": {"CA": True}}, {"keyUsage": all_nine, "critical": False})
    ku = spec.extensions[1]
    assert ku.critical is False
    assert ku.value == x509.KeyUsage(True, True, True, True, True, True, True, True, True)


@pytest.mark.parametrize(
    ("entries", "field", "fragment"),
    [
        ([{"keyUsage": []}], "extensions[0].keyUsage", "empty"),
        ([{"keyUsage": "digitalSignature"}], "extensions[0].keyUsage", "JSON array"),
        ([{"keyUsage": ["digitalSignature", 7]}], "extensions[0].keyUsage[1]", "string"),
        ([{"keyUsage": ["digitalSignature", "signing"]}], "extensions[0].keyUsage[1]", "unknown key usage"),
        ([{"keyUsage": ["digitalSignature", "digitalSignature"]}], "extensions[0].keyUsage[1]", "duplicate"),
        ([{"keyUsage": ["nonRepudiation", "contentCommitment"]}], "extensions[0].keyUsage[1]", "duplicate"),
        ([{"keyUsage": ["encipherOnly"]}], "extensions[0].keyUsage[0]", "keyAgreement"),
        ([{"keyUsage": ["digitalSignature", "decipherOnly"]}], "extensions[0].keyUsage[1]", "keyAgreement"),
        ([{"keyUsage": ["keyCertSign"]}], "extensions[0].keyUsage", "CA true"),
        ([{"basicConstraints": {"CA": False}}, {"keyUsage": ["keyCertSign"]}], "extensions[1].keyUsage", "CA true"),
        (
            [{"basicConstraints": {"CA": True, "pathLen": 0}}, {"keyUsage": ["cRLSign"]}],
            "extensions[0].basicConstraints.pathLen",
            "keyCertSign",
        ),
    ],
)
def test_key_usage_refused(entries: list[object], field: str, fragment: str) -> None:
    refused(body(extensions=entries), field, fragment)


# --- extendedKeyUsage ------------------------------------------------------------------------


def test_extended_key_usage_names_and_oids() -> None:
    names = [
        "serverAuth",
        "clientAuth",
        "codeSigning",
        "emailProtection",
        "timeStamping",
        "OCSPSigning",
        "anyExtendedKeyUsage",
        "1.3.6.1.4.1.311.20.2.2",
    ]
    eku = only_ext({"extendedKeyUsage": names})
    assert not eku.critical
    assert eku.value == x509.ExtendedKeyUsage(
        [
            ExtendedKeyUsageOID.SERVER_AUTH,
            ExtendedKeyUsageOID.CLIENT_AUTH,
            ExtendedKeyUsageOID.CODE_SIGNING,
            ExtendedKeyUsageOID.EMAIL_PROTECTION,
            ExtendedKeyUsageOID.TIME_STAMPING,
            ExtendedKeyUsageOID.OCSP_SIGNING,
            ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
            x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.2"),
        ]
    )
    assert only_ext({"extendedKeyUsage": ["clientAuth"], "critical": True}).critical


@pytest.mark.parametrize(
    ("value", "field", "fragment"),
    [
        ([], "extensions[0].extendedKeyUsage", "empty"),
        ("clientAuth", "extensions[0].extendedKeyUsage", "JSON array"),
        (["clientauth"], "extensions[0].extendedKeyUsage[0]", "unknown extended key usage"),
        ([1.3], "extensions[0].extendedKeyUsage[0]", "string"),
        (["1"], "extensions[0].extendedKeyUsage[0]", "dotted OID"),
        (["3.1.2"], "extensions[0].extendedKeyUsage[0]", "dotted OID"),
        (["1.2.03"], "extensions[0].extendedKeyUsage[0]", "dotted OID"),
        (["1.40.1"], "extensions[0].extendedKeyUsage[0]", "valid OID"),
        (["clientAuth", "1.3.6.1.5.5.7.3.2"], "extensions[0].extendedKeyUsage[1]", "duplicate"),
    ],
)
def test_extended_key_usage_refused(value: object, field: str, fragment: str) -> None:
    refused(body(extensions=[{"extendedKeyUsage": value}]), field, fragment)


# --- key identifiers -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, {}, "hash"])
def test_subject_key_identifier_marker(value: object) -> None:
    spec = with_ext({"subjectKeyIdentifier": value})
    assert spec.subject_key_identifier and spec.extensions == ()


@pytest.mark.parametrize("value", [True, {}])
def test_authority_key_identifier_marker(value: object) -> None:
    spec = with_ext({"authorityKeyIdentifier": value, "critical": False})
    assert spec.authority_key_identifier and spec.extensions == ()


@pytest.mark.parametrize(
    ("entry", "field", "fragment"),
    [
        ({"subjectKeyIdentifier": False}, "extensions[0].subjectKeyIdentifier", "computed"),
        ({"subjectKeyIdentifier": "abcd"}, "extensions[0].subjectKeyIdentifier", "computed"),
        ({"subjectKeyIdentifier": {"keyid": 1}}, "extensions[0].subjectKeyIdentifier", "computed"),
        ({"subjectKeyIdentifier": True, "critical": True}, "extensions[0].critical", "non-critical"),
        ({"authorityKeyIdentifier": "hash"}, "extensions[0].authorityKeyIdentifier", "computed"),
        ({"authorityKeyIdentifier": None}, "extensions[0].authorityKeyIdentifier", "computed"),
        ({"authorityKeyIdentifier": True, "critical": True}, "extensions[0].critical", "non-critical"),
    ],
)
def test_key_identifier_refused(entry: object, field: str, fragment: str) -> None:
    refused(body(extensions=[entry]), field, fragment)


# --- subjectAltName ------------------------------------------------------------------------------


def test_subject_alt_name_forms() -> None:
    san = only_ext(
        {
            "subjectAltName": [
                "DNS:example.com",
                "dns:*.example.com",
                "IP:192.0.2.1",
                "IP:2001:db8::1",
                "email:a@example.com",
                "URI:https://example.com/x?y=1",
                {"dns": "xn--bcher-kva.example"},
                {"ip": "10.0.0.1"},
                {"email": "b@example.com"},
                {"URI": "urn:uuid:123e4567-e89b-12d3-a456-426614174000"},
            ]
        }
    )
    assert not san.critical
    assert san.value == x509.SubjectAlternativeName(
        [
            x509.DNSName("example.com"),
            x509.DNSName("*.example.com"),
            x509.IPAddress(ipaddress.ip_address("192.0.2.1")),
            x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
            x509.RFC822Name("a@example.com"),
            x509.UniformResourceIdentifier("https://example.com/x?y=1"),
            x509.DNSName("xn--bcher-kva.example"),
            x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
            x509.RFC822Name("b@example.com"),
            x509.UniformResourceIdentifier("urn:uuid:123e4567-e89b-12d3-a456-426614174000"),
        ]
    )


@pytest.mark.parametrize(
    ("value", "field", "fragment"),
    [
        ([], "extensions[0].subjectAltName", "empty"),
        ("DNS:example.com", "extensions[0].subjectAltName", "JSON array"),
        (["IP:300.1.1.1"], "extensions[0].subjectAltName[0]", "IP address"),
        (["IP:example.com"], "extensions[0].subjectAltName[0]", "IP address"),
        (["IP:fe80::1%eth0"], "extensions[0].subjectAltName[0]", "IP address"),
        ([{"ip": "1.2.3"}], "extensions[0].subjectAltName[0]", "IP address"),
        (["example.com"], "extensions[0].subjectAltName[0]", "must start with"),
        (["RID:1.2.3"], "extensions[0].subjectAltName[0]", "must start with"),
        (["DNS:"], "extensions[0].subjectAltName[0]", "empty"),
        (["DNS:bücher.example"], "extensions[0].subjectAltName[0]", "A-label"),
        (["DNS:exa mple.com"], "extensions[0].subjectAltName[0]", "DNS name"),
        (["DNS:-bad.example"], "extensions[0].subjectAltName[0]", "DNS name"),
        (["DNS:a..b"], "extensions[0].subjectAltName[0]", "DNS name"),
        (["email:nobody"], "extensions[0].subjectAltName[0]", "email"),
        (["URI:not a uri"], "extensions[0].subjectAltName[0]", "URI"),
        (["URI:/relative"], "extensions[0].subjectAltName[0]", "absolute"),
        ([{"dns": "a.example", "ip": "1.2.3.4"}], "extensions[0].subjectAltName[0]", "exactly one"),
        ([{"rid": "1.2.3"}], "extensions[0].subjectAltName[0]", "exactly one"),
        ([{"dns": 5}], "extensions[0].subjectAltName[0]", "string"),
        ([5], "extensions[0].subjectAltName[0]", "DNS:example.com"),
        (["DNS:a.example", {"dns": "a.example"}], "extensions[0].subjectAltName[1]", "duplicate"),
    ],
)
def test_subject_alt_name_refused(value: object, field: str, fragment: str) -> None:
    refused(body(extensions=[{"subjectAltName": value}]), field, fragment)


# --- crlDistributionPoints ------------------------------------------------------------------------


def test_crl_distribution_points() -> None:
    cdp = only_ext({"crlDistributionPoints": ["http://crl.example.com/a.crl", "https://b.example/c.crl"]})
    assert not cdp.critical
    assert cdp.value == x509.CRLDistributionPoints(
        [
            x509.DistributionPoint([x509.UniformResourceIdentifier(u)], None, None, None)
            for u in ("http://crl.example.com/a.crl", "https://b.example/c.crl")
        ]
    )


@pytest.mark.parametrize(
    ("value", "field", "fragment"),
    [
        ([], "extensions[0].crlDistributionPoints", "empty"),
        ("http://x/crl", "extensions[0].crlDistributionPoints", "JSON array"),
        ([{"uri": "http://x/crl"}], "extensions[0].crlDistributionPoints[0]", "string"),
        (["ftp://x/crl"], "extensions[0].crlDistributionPoints[0]", "http"),
        (["http:///nohost"], "extensions[0].crlDistributionPoints[0]", "http"),
        (["crl.example.com/x.crl"], "extensions[0].crlDistributionPoints[0]", "absolute"),
        (["http://crl.exämple.com/"], "extensions[0].crlDistributionPoints[0]", "valid URI"),
    ],
)
def test_crl_distribution_points_refused(value: object, field: str, fragment: str) -> None:
    refused(body(extensions=[{"crlDistributionPoints": value}]), field, fragment)


# --- property tests: only InvalidInput, and whatever parses also builds ---------------------------

_VOCAB = [
    "serialNumber",
    "subject",
    "validity",
    "extensions",
    "notBefore",
    "notAfter",
    "years",
    "weeks",
    "days",
    "hours",
    "minutes",
    "seconds",
    "C",
    "CN",
    "O",
    "DC",
    "emailAddress",
    "critical",
    "basicConstraints",
    "CA",
    "pathLen",
    "keyUsage",
    "extendedKeyUsage",
    "subjectKeyIdentifier",
    "authorityKeyIdentifier",
    "subjectAltName",
    "crlDistributionPoints",
    "dns",
    "ip",
    "email",
    "uri",
]
_STRINGS = _VOCAB + [
    "now",
    "hash",
    "2030-01-01",
    "2030-01-01T00:00:00Z",
    "1950-01-01",
    "9999-12-31T23:59:59+00:00",
    "keyCertSign",
    "cRLSign",
    "digitalSignature",
    "keyAgreement",
    "encipherOnly",
    "clientAuth",
    "1.2.3.4",
    "DNS:example.com",
    "IP:1.2.3.4",
    "IP:::1",
    "email:a@b",
    "URI:http://x",
    "http://crl.example/x",
    "CZ",
    "",
    "\ud800",
    "a\x00",
    "é",
    "*.x",
]
_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(_STRINGS)
    | st.text(max_size=12)
)
_json = st.recursive(
    _leaf,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(_VOCAB) | st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
_BUILD_KEY = keys.generate_ca_key()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_json)
def test_random_json_only_raises_invalid_input(value: object) -> None:
    try:
        parse(value)
    except InvalidInput as exc:
        assert exc.field is None or isinstance(exc.field, str)


def _mutate(draw: st.DrawFn) -> object:
    """The reference body with one position replaced by random JSON, or a key added."""
    doc: Any = json.loads(REFERENCE_BODY)
    doc["extensions"].append({"subjectAltName": ["DNS:example.com"]})
    doc["extensions"].append({"crlDistributionPoints": ["http://crl.example/x"]})
    doc["extensions"].append({"extendedKeyUsage": ["clientAuth"]})
    doc["extensions"].append({"authorityKeyIdentifier": True})
    paths: list[list[Any]] = []

    def walk(node: Any, path: list[Any]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, [*path, k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, [*path, i])

    walk(doc, [])
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(paths[1:]))
        parent = doc
        try:
            for step in path[:-1]:
                parent = parent[step]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent[draw(st.sampled_from(_VOCAB))] = draw(_json)
            else:
                parent[path[-1]] = draw(_json)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed this path
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.composite(_mutate)())
def test_mutated_reference_only_raises_invalid_input_and_parsed_specs_build(value: object) -> None:
    try:
        spec = parse(value)
    except InvalidInput as exc:
        assert exc.field is None or isinstance(exc.field, str)
        return
    cert = builder.build_self_signed(spec, _BUILD_KEY)
    assert cert.serial_number == spec.serial_number
    assert cert.not_valid_before_utc == spec.not_before and cert.not_valid_after_utc == spec.not_after
    try:
        check_client_ca(spec, now=NOW)
    except InvalidInput as exc:  # the tenant CA profile refuses with a field too
        assert isinstance(exc.field, str) and exc.field


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(
        [
            "C",
            "ST",
            "L",
            "O",
            "OU",
            "CN",
            "emailAddress",
            "serialNumber",
            "DC",
            "UID",
            "dnQualifier",
            "postalCode",
            "name",
        ]
    ),
    st.text(st.characters(), min_size=0, max_size=70),
)
def test_any_accepted_subject_value_builds(attribute: str, value: str) -> None:
    try:
        spec = parse(body(subject={attribute: value}))
    except InvalidInput as exc:
        assert exc.field == f"subject.{attribute}"
        return
    cert = builder.build_self_signed(spec, _BUILD_KEY)
    assert cert.subject == spec.subject


# --- the tenant CA profile (check_client_ca) ------------------------------------------------------

CLIENT_CA_EXTENSIONS: list[dict[str, Any]] = [
    {"basicConstraints": {"CA": True, "pathLen": 0}, "critical": True},
    {"keyUsage": ["keyCertSign", "cRLSign"]},
]


def client_ca_body(*extra: dict[str, Any], validity: dict[str, Any] | None = None, **bc: Any) -> dict[str, Any]:
    """The reference body with ``extra`` extensions, another validity, or other basicConstraints."""
    doc: dict[str, Any] = json.loads(REFERENCE_BODY)
    if bc:
        doc["extensions"][0]["basicConstraints"] = bc
    doc["extensions"].extend(extra)
    if validity is not None:
        doc["validity"] = validity
    return doc


def refused_as_client_ca(b: dict[str, Any], field: str, fragment: str = "") -> InvalidInput:
    spec = parse(b)  # well-formed: the parser takes it, the profile does not
    with pytest.raises(InvalidInput) as info:
        check_client_ca(spec, now=NOW)
    assert info.value.field == field, info.value.message
    assert fragment in info.value.message, info.value.message
    return info.value


def test_reference_body_is_a_client_ca() -> None:
    spec = parse(json.loads(REFERENCE_BODY))
    check_client_ca(spec, now=NOW)
    cert = builder.build_self_signed(spec, _BUILD_KEY)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(weeks=1040)  # ~19.9 years


@pytest.mark.parametrize(
    "extra",
    [
        {"extendedKeyUsage": ["clientAuth"]},
        {"extendedKeyUsage": ["1.3.6.1.5.5.7.3.2"], "critical": True},
        {"subjectAltName": ["email:pki@example.com"]},
        {"crlDistributionPoints": ["http://crl.example.com/ca.crl"]},
        {"authorityKeyIdentifier": True},
    ],
)
def test_client_ca_may_carry(extra: dict[str, Any]) -> None:
    check_client_ca(parse(client_ca_body(extra)), now=NOW)


@pytest.mark.parametrize(
    ("extra", "field", "fragment"),
    [
        ({"extendedKeyUsage": ["serverAuth"]}, "extensions[2].extendedKeyUsage[0]", "serverAuth is not"),
        ({"extendedKeyUsage": ["clientAuth", "serverAuth"]}, "extensions[2].extendedKeyUsage[1]", "only be clientAuth"),
        ({"extendedKeyUsage": ["anyExtendedKeyUsage"]}, "extensions[2].extendedKeyUsage[0]", "any purpose"),
        (
            {"extendedKeyUsage": ["clientAuth", "anyExtendedKeyUsage"]},
            "extensions[2].extendedKeyUsage[1]",
            "any purpose",
        ),
        ({"extendedKeyUsage": ["codeSigning"]}, "extensions[2].extendedKeyUsage[0]", "codeSigning"),
        ({"extendedKeyUsage": ["1.2.3.4"]}, "extensions[2].extendedKeyUsage[0]", "1.2.3.4"),
        ({"subjectAltName": ["DNS:*.google.com"]}, "extensions[2].subjectAltName[0]", "names no host"),
        ({"subjectAltName": ["email:pki@example.com", "IP:10.0.0.1"]}, "extensions[2].subjectAltName[1]", "IP"),
        ({"subjectAltName": [{"uri": "https://example.com/"}]}, "extensions[2].subjectAltName[0]", "URI"),
    ],
)
def test_client_ca_refuses_extension(extra: dict[str, Any], field: str, fragment: str) -> None:
    refused_as_client_ca(client_ca_body(extra), field, fragment)


@pytest.mark.parametrize(
    "bc",
    [{"CA": True}, {"CA": True, "pathLen": None}, {"CA": True, "pathLen": 1}, {"CA": True, "pathLen": 3}],
)
def test_client_ca_needs_path_len_zero(bc: dict[str, Any]) -> None:
    error = refused_as_client_ca(client_ca_body(**bc), "extensions[0].basicConstraints.pathLen", "present and 0")
    assert "depth 1" in error.message


def test_client_ca_needs_basic_constraints() -> None:
    doc = client_ca_body()
    doc["extensions"] = doc["extensions"][1:]
    doc["extensions"][0]["keyUsage"] = ["digitalSignature"]
    refused_as_client_ca(doc, "extensions.basicConstraints", "CA true")
    doc = client_ca_body(CA=False)
    doc["extensions"][1]["keyUsage"] = ["digitalSignature"]
    refused_as_client_ca(doc, "extensions[0].basicConstraints.CA", "CA true")


def test_client_ca_validity_bounds() -> None:
    def ok(validity: dict[str, Any]) -> None:
        check_client_ca(parse(client_ca_body(validity=validity)), now=NOW)

    ok({"notAfter": {"years": 30}})
    ok({"notBefore": (NOW_S - CA_MAX_BACKDATE).isoformat(), "notAfter": {"years": 30}})
    ok({"notBefore": "2024-05-01", "notAfter": "2054-05-01"})
    ok({"notAfter": {"days": CA_MAX_LIFETIME.days}})
    assert CA_MAX_LIFETIME == timedelta(days=10958)
    # 2024-02-01 to 2054-02-01 holds 8 leap days (2024 ... 2052): the longest 30 calendar years.
    february = datetime(2024, 2, 1, tzinfo=UTC)
    spec = parse_certificate_spec(client_ca_body(validity={"notAfter": "2054-02-01"}), now=february)
    assert spec.not_after - spec.not_before == CA_MAX_LIFETIME
    check_client_ca(spec, now=february)


@pytest.mark.parametrize(
    ("validity", "field", "fragment"),
    [
        ({"notBefore": "1950-01-01T00:00:00Z", "notAfter": "2030-01-01"}, "validity.notBefore", "one day"),
        (
            {"notBefore": (NOW_S - CA_MAX_BACKDATE - timedelta(seconds=1)).isoformat(), "notAfter": {"years": 1}},
            "validity.notBefore",
            "one day",
        ),
        ({"notAfter": "9999-12-31T23:59:59Z"}, "validity.notAfter", "30 years"),
        ({"notAfter": {"years": 31}}, "validity.notAfter", "30 years"),
        ({"notAfter": {"days": CA_MAX_LIFETIME.days, "seconds": 1}}, "validity.notAfter", "10958 days"),
    ],
)
def test_client_ca_validity_refused(validity: dict[str, Any], field: str, fragment: str) -> None:
    refused_as_client_ca(client_ca_body(validity=validity), field, fragment)


def test_extension_paths_are_recorded_but_not_compared() -> None:
    spec = parse(client_ca_body({"extendedKeyUsage": ["clientAuth"]}))
    assert [e.path for e in spec.extensions] == [
        "extensions[0].basicConstraints",
        "extensions[1].keyUsage",
        "extensions[2].extendedKeyUsage",
    ]
    assert spec.extensions[0] == ExtensionSpec(x509.BasicConstraints(ca=True, path_length=0), True)


def test_a_ca_made_elsewhere_is_checked_for_extensions_not_its_start() -> None:
    """A CA certificate from another PKI (e.g. one migrated with its fleet) started long ago:
    its extensions follow the profile, its validity rules are for CAs this service makes."""
    old = parse_certificate_spec(
        client_ca_body(validity={"notBefore": "2001-01-01", "notAfter": "2045-01-01"}),
        now=datetime(2001, 1, 1, tzinfo=UTC),
    )
    cert = builder.build_self_signed(old, _BUILD_KEY)
    made_elsewhere = [ExtensionSpec(e.value, e.critical, "certificate") for e in cert.extensions]
    check_client_ca_extensions(made_elsewhere)
    with pytest.raises(InvalidInput):
        check_client_ca(old, now=NOW)
    server = parse(client_ca_body({"extendedKeyUsage": ["serverAuth"]}))
    cert = builder.build_self_signed(server, _BUILD_KEY)
    with pytest.raises(InvalidInput) as info:
        check_client_ca_extensions([ExtensionSpec(e.value, e.critical, "certificate") for e in cert.extensions])
    assert info.value.field == "certificate[0]"
