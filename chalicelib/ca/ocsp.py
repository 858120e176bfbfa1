"""OCSP wire format (RFC 6960 with the RFC 5019 lightweight profile) and the delegated responder
certificate: parse a request, build a signed or an unsuccessful response, make a signer.

Pure logic over ``cryptography``: the caller finds the status and passes in the signer, times and keys.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chalicelib.ca.builder import DIGITAL_SIGNATURE_ONLY
from chalicelib.ca.crl import REASONS
from chalicelib.ca.keys import signature_hash
from chalicelib.ca.serial import random_serial

MAX_REQUEST_SIZE = 4096  # one CertID, a nonce and perhaps a signature: far below this
MAX_NONCE_SIZE = 32  # RFC 8954 §2.1: a responder may refuse longer nonces (they are a DoS lever)
# Hash algorithms a CertID may use (SHA-1 is what RFC 5019 clients send; nginx and openssl do).
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class Status(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


class Malformed(ValueError):
    """The request is not one this responder can read: answered malformedRequest."""


@dataclass(frozen=True)
class CertId:
    algorithm: str  # a key of _HASHES
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int


@dataclass(frozen=True)
class Request:
    cert_id: CertId
    nonce: bytes | None


def parse_request(der: bytes) -> Request:
    """One request (RFC 5019 §2.1.1: clients send exactly one); Malformed otherwise."""
    if not der or len(der) > MAX_REQUEST_SIZE:
        raise Malformed("empty or too large")
    try:
        request = ocsp.load_der_ocsp_request(der)
        algorithm = request.hash_algorithm.name
        cert_id = CertId(algorithm, request.issuer_name_hash, request.issuer_key_hash, request.serial_number)
        extensions = request.extensions
    except (ValueError, TypeError, x509.UnsupportedGeneralNameType) as exc:
        raise Malformed(str(exc) or "not an OCSP request") from None
    except Exception as exc:  # cryptography raises its own types for unsupported hashes
        raise Malformed(type(exc).__name__) from None
    if algorithm not in _HASHES:
        raise Malformed(f"unsupported CertID hash algorithm {algorithm}")
    if len(cert_id.issuer_name_hash) != _HASHES[algorithm]().digest_size:
        raise Malformed("issuerNameHash of the wrong length")
    nonce: bytes | None = None
    for extension in extensions:
        if isinstance(extension.value, x509.OCSPNonce):
            nonce = extension.value.nonce
            if not 0 < len(nonce) <= MAX_NONCE_SIZE:
                raise Malformed(f"a nonce is 1 to {MAX_NONCE_SIZE} octets")
        elif extension.critical:
            raise Malformed(f"unsupported critical extension {extension.oid.dotted_string}")
    return Request(cert_id, nonce)


def issuer_hashes(issuer: x509.Certificate, algorithm: str) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of a CA certificate under ``algorithm`` (RFC 6960 §4.1.1: the
    hash of the DER of the issuer's name, and of its subjectPublicKey BIT STRING's value)."""
    name = issuer.subject.public_bytes()
    public_key = issuer.public_key()
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        key = public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    else:  # an imported legacy CA of another key type: the BIT STRING value is the PKCS#1 form
        key = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return hashlib.new(algorithm, name).digest(), hashlib.new(algorithm, key).digest()


def build_signer(
    *,
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    now: datetime,
    lifetime: timedelta,
) -> x509.Certificate:
    """A delegated OCSP responder certificate (RFC 6960 §4.2.2.2) issued by ``issuer``: EKU OCSPSigning
    only, id-pkix-ocsp-nocheck (clients do not ask about the responder itself, so it must be short-lived),
    digitalSignature, never past the issuer's notAfter."""
    not_before = (now - timedelta(minutes=5)).astimezone(UTC).replace(microsecond=0)
    not_after = min(now + lifetime, issuer.not_valid_after_utc).astimezone(UTC).replace(microsecond=0)
    if not_after <= now:
        raise ValueError("the issuer expires before a responder certificate could be valid")
    subject = x509.Name(
        [
            *[a for a in issuer.subject if a.oid != NameOID.COMMON_NAME],
            x509.NameAttribute(NameOID.COMMON_NAME, "OCSP responder"),
        ]
    )
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public)
        .serial_number(random_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(DIGITAL_SIGNATURE_ONLY, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, signature_hash(issuer_key))
    )


@dataclass(frozen=True)
class Answer:
    status: Status
    revoked_at: datetime | None = None
    reason: str | None = None  # an RFC 5280 reason name (chalicelib/ca/crl.py)


def build_response(
    request: Request,
    answer: Answer,
    *,
    signer: x509.Certificate,
    signer_key: ec.EllipticCurvePrivateKey,
    this_update: datetime,
    next_update: datetime,
) -> bytes:
    """A successful BasicOCSPResponse for the request's CertID (echoed as asked, same hash), signed by
    the delegated ``signer`` (included in ``certs``), responder id by key hash, the nonce echoed."""
    cert_id = request.cert_id
    status = {
        Status.GOOD: ocsp.OCSPCertStatus.GOOD,
        Status.REVOKED: ocsp.OCSPCertStatus.REVOKED,
        Status.UNKNOWN: ocsp.OCSPCertStatus.UNKNOWN,
    }[answer.status]
    revoked_at = answer.revoked_at.astimezone(UTC).replace(microsecond=0) if answer.revoked_at else None
    reason = None
    if answer.status == Status.REVOKED and answer.reason and answer.reason != "unspecified":
        reason = REASONS.get(answer.reason)
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=cert_id.issuer_name_hash,
            issuer_key_hash=cert_id.issuer_key_hash,
            serial_number=cert_id.serial,
            algorithm=_HASHES[cert_id.algorithm](),
            cert_status=status,
            this_update=this_update.astimezone(UTC).replace(microsecond=0),
            next_update=next_update.astimezone(UTC).replace(microsecond=0),
            revocation_time=revoked_at if answer.status == Status.REVOKED else None,
            revocation_reason=reason,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, signer)
        .certificates([signer])
    )
    if request.nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(request.nonce), critical=False)
    response = builder.sign(signer_key, signature_hash(signer_key))
    return response.public_bytes(serialization.Encoding.DER)


def unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    """An OCSPResponse with only a status (malformedRequest, internalError, tryLater, unauthorized)."""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


MALFORMED = ocsp.OCSPResponseStatus.MALFORMED_REQUEST
UNAUTHORIZED = ocsp.OCSPResponseStatus.UNAUTHORIZED
TRY_LATER = ocsp.OCSPResponseStatus.TRY_LATER
INTERNAL_ERROR = ocsp.OCSPResponseStatus.INTERNAL_ERROR
