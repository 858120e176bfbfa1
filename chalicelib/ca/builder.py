"""X.509 certificate construction: the tenant's self-signed CA and SeaCat client certificates.

Pure logic over ``cryptography``: callers pass in keys, times and serials, so every
function here is deterministic apart from the ECDSA signature and ``random_serial``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chalicelib.ca.keys import signature_hash
from chalicelib.ca.serial import SERIAL_LIMIT, random_serial
from chalicelib.ca.spec import CertificateSpec

__all__ = ["SERIAL_LIMIT", "random_serial"]  # and the builders below; serials live in ca/serial.py

UTC = UTC

# RFC 5280 4.1.2.5: times up to 2049 are UTCTime, from 2050 GeneralizedTime. The
# SeaCat iOS client parses only 13-character UTCTime, so client certificates must end
# strictly before this instant.
UTCTIME_LIMIT = datetime(2050, 1, 1, tzinfo=UTC)
LATEST_CLIENT_NOT_AFTER = UTCTIME_LIMIT - timedelta(seconds=1)

# SeaCat clients start renewing at most this long before expiry (see in_renewal_window).
RENEWAL_MARGIN = timedelta(days=30)

DIGITAL_SIGNATURE_ONLY = x509.KeyUsage(
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
# The client profile's fixed extensions, made once (extension values are immutable).
END_ENTITY = x509.BasicConstraints(ca=False, path_length=None)
CLIENT_AUTH_ONLY = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])


@lru_cache(maxsize=1024)
def crl_distribution(url: str) -> x509.CRLDistributionPoints:
    """The CRL distribution point of an issuing CA certificate: the same for all it issues."""
    point = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)], relative_name=None, reasons=None, crl_issuer=None
    )
    return x509.CRLDistributionPoints([point])


@lru_cache(maxsize=1024)
def ocsp_access(url: str) -> x509.AuthorityInformationAccess:
    """RFC 5280 §4.2.2.1: where to ask a certificate's status (one per issuing CA certificate)."""
    ocsp = x509.oid.AuthorityInformationAccessOID.OCSP
    return x509.AuthorityInformationAccess([x509.AccessDescription(ocsp, x509.UniformResourceIdentifier(url))])


def certificate_id(der: bytes) -> str:
    """The product-wide certificate id: lowercase hex SHA-384 of the DER (96 chars)."""
    return hashlib.sha384(der).hexdigest()


def in_renewal_window(not_before: datetime, not_after: datetime, now: datetime) -> bool:
    """The SeaCat clients' renewal trigger: past half the lifetime, or within 30 days of expiry."""
    lifetime = not_after - not_before
    return now > not_after - lifetime / 2 or now > not_after - RENEWAL_MARGIN


def client_validity(
    now: datetime,
    lifetime_days: int,
    *,
    backdate: timedelta = timedelta(hours=1),
    ca_not_after: datetime | None = None,
) -> tuple[datetime, datetime]:
    """(not_before, not_after) for a client certificate issued at ``now``.

    not_before is backdated (client clocks drift; the Android client was seen an hour
    ahead) and truncated to whole seconds. not_after is clamped to the last UTCTime
    second and to the CA's own expiry, so a chain never outlives its CA.
    Clamping can leave no usable window (CA about to expire or expired): callers must
    check ``not_after > now`` and refuse to issue; build_client_certificate rejects a
    reversed window anyway. Raises ValueError only for bad arguments.
    """
    _require_aware(now, "now")
    if isinstance(lifetime_days, bool) or not isinstance(lifetime_days, int) or lifetime_days <= 0:
        raise ValueError("lifetime_days must be a positive integer")
    if backdate < timedelta(0):
        raise ValueError("backdate must not be negative")

    not_before = (now.astimezone(UTC) - backdate).replace(microsecond=0)
    try:
        not_after = not_before + timedelta(days=lifetime_days)
    except OverflowError:
        not_after = LATEST_CLIENT_NOT_AFTER
    not_after = min(not_after, LATEST_CLIENT_NOT_AFTER)
    if ca_not_after is not None:
        _require_aware(ca_not_after, "ca_not_after")
        not_after = min(not_after, ca_not_after.astimezone(UTC).replace(microsecond=0))
    return not_before, not_after


def build_self_signed(spec: CertificateSpec, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """The tenant CA certificate described by ``spec``, signed by ``key`` (ecdsa-with-SHA256; SHA-384
    for a P-384 key).

    A subjectKeyIdentifier is always added: clients' AKI chaining and RFC 5280
    4.2.1.2 (MUST for CA certificates) both rely on it.
    """
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(spec.subject)
        .issuer_name(spec.subject)
        .public_key(public_key)
        .serial_number(spec.serial_number)
        .not_valid_before(spec.not_before)
        .not_valid_after(spec.not_after)
    )
    for ext in spec.extensions:
        builder = builder.add_extension(ext.value, critical=ext.critical)
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    builder = builder.add_extension(ski, critical=False)
    if spec.authority_key_identifier:
        # Self-signed: the authority key is our own key.
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    return builder.sign(key, signature_hash(key))


def build_client_certificate(
    *,
    public_key: ec.EllipticCurvePublicKey,
    identity: str,
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    crl_url: str | None = None,
    ocsp_url: str | None = None,
) -> x509.Certificate:
    """A SeaCat client certificate: CN=<identity>, digitalSignature + clientAuth, end entity.

    Raises ValueError for arguments the caller should have prevented (not_after
    in 2050 or later, reversed validity, bad serial, issuer key not matching issuer).
    """
    _require_aware(not_before, "not_before")
    _require_aware(not_after, "not_after")
    if not_after >= UTCTIME_LIMIT:
        raise ValueError(
            "not_after must be before 2050-01-01T00:00:00Z: SeaCat iOS clients cannot read GeneralizedTime"
        )
    not_before = not_before.astimezone(UTC).replace(microsecond=0)
    not_after = not_after.astimezone(UTC).replace(microsecond=0)
    if not_after <= not_before:
        raise ValueError("not_after must be after not_before")
    if isinstance(serial, bool) or not isinstance(serial, int) or not 0 < serial < SERIAL_LIMIT:
        raise ValueError("serial must be a positive integer of at most 20 octets")
    if not isinstance(identity, str) or not identity:
        raise ValueError("identity must be a non-empty string")
    aki = _issuer_aki(issuer, issuer_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(END_ENTITY, critical=True)
        .add_extension(DIGITAL_SIGNATURE_ONLY, critical=True)
        .add_extension(CLIENT_AUTH_ONLY, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(aki, critical=False)
    )
    if crl_url is not None:
        builder = builder.add_extension(crl_distribution(crl_url), critical=False)
    if ocsp_url is not None:
        builder = builder.add_extension(ocsp_access(ocsp_url), critical=False)
    return builder.sign(issuer_key, signature_hash(issuer_key))


# Per issuer: its key checked against its certificate once, and its AuthorityKeyIdentifier.
# Keyed by the certificate (equal by DER); the key is held to be matched by identity, since
# callers keep one key object per CA. Bounded: a container serves few CAs.
_issuers: dict[x509.Certificate, tuple[ec.EllipticCurvePrivateKey, x509.AuthorityKeyIdentifier]] = {}
_ISSUERS_MAX = 256


def _issuer_aki(issuer: x509.Certificate, issuer_key: ec.EllipticCurvePrivateKey) -> x509.AuthorityKeyIdentifier:
    known = _issuers.get(issuer)
    if known is not None and known[0] is issuer_key:
        return known[1]
    issuer_public = issuer_key.public_key()
    if _spki(issuer.public_key()) != _spki(issuer_public):
        raise ValueError("issuer_key does not match the issuer certificate's public key")
    try:
        issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski)
    except x509.ExtensionNotFound:
        # Issuer without SKI (e.g. an imported legacy CA): derive the same RFC 5280 method-1 id.
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public)
    if len(_issuers) >= _ISSUERS_MAX:
        _issuers.clear()
    _issuers[issuer] = (issuer_key, aki)
    return aki


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _spki(public_key: object) -> bytes:
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return b""  # never equal to an EC key's SPKI
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
