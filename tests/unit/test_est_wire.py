"""EST's wire format (chalicelib/est/wire.py): what a client sends is read whatever its line breaks,
what it gets back parses as the RFC says."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from cryptography.x509.oid import NameOID

from chalicelib.errors import InvalidInput, PayloadTooLarge
from chalicelib.est import wire


@pytest.fixture(scope="module")
def csr() -> x509.CertificateSigningRequest:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device-1")])
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())


@pytest.mark.parametrize(
    "shape",
    [
        lambda b: b,  # one line
        lambda b: b"\n".join(b[i : i + 64] for i in range(0, len(b), 64)) + b"\n",  # 64 with LF
        lambda b: b"\r\n".join(b[i : i + 76] for i in range(0, len(b), 76)) + b"\r\n",  # 76 with CRLF
        lambda b: b"  " + b + b" \t\n",
        lambda b: b"-----BEGIN CERTIFICATE REQUEST-----\n" + b + b"\n-----END CERTIFICATE REQUEST-----\n",
    ],
)
def test_a_request_is_read_whatever_its_line_breaks(csr: x509.CertificateSigningRequest, shape: object) -> None:
    der = csr.public_bytes(Encoding.DER)
    assert callable(shape)
    assert wire.parse_request(shape(base64.b64encode(der))) == der


@pytest.mark.parametrize(
    "body, reason",
    [(b"", "required"), (b"   \n", "required"), (b"%%%%", "not base64"), (base64.b64encode(b"hello"), "PKCS#10")],
)
def test_what_is_not_a_request_is_a_400_naming_the_body(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        wire.parse_request(body)
    assert caught.value.field == "body" and reason in caught.value.message


def test_a_body_over_the_limit_is_a_413() -> None:
    with pytest.raises(PayloadTooLarge):
        wire.parse_request(b"A" * (wire.MAX_REQUEST + 1))


def test_certs_only_is_one_base64_line_of_a_pkcs7_with_the_certificates(csr: x509.CertificateSigningRequest) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    import datetime

    now = datetime.datetime.now(datetime.UTC)
    certs = [
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(csr.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
        for serial in (1, 2)
    ]
    body = wire.certs_only(certs)
    assert body.endswith(b"\n") and body.count(b"\n") == 1  # strongSwan 5.9 misreads wrapped lines
    # a SET OF in DER: in the encoding's order, not necessarily the one given
    back = pkcs7.load_der_pkcs7_certificates(base64.b64decode(body))
    assert sorted(c.public_bytes(Encoding.DER) for c in back) == sorted(c.public_bytes(Encoding.DER) for c in certs)


def test_oids_are_encoded_as_der() -> None:
    # against cryptography's own encoding of the same OIDs, inside an extension
    for dotted in ("1.2.840.10045.2.1", "1.3.132.0.34", "2.5.29.37", "1.3.6.1.4.1.311.21.7", "2.999.3"):
        ext = x509.ExtendedKeyUsage([x509.ObjectIdentifier(dotted)]).public_bytes()
        assert ext == b"\x30" + bytes([len(wire.oid_der(dotted))]) + wire.oid_der(dotted)
    with pytest.raises(ValueError):
        wire.oid_der("3.1")


def test_empty_csrattrs_is_an_empty_sequence() -> None:
    assert base64.b64decode(wire.csr_attrs()) == b"\x30\x00"
