"""What makes two certificates the same certificate: their TBS, not their bytes.

ECDSA signatures are malleable: when (r, s) verifies, so does (r, n - s). Anyone holding a client
certificate (it is not secret) can re-encode its signature into a second, equally valid DER encoding
with another SHA-384 id and another fingerprint. Trust decisions therefore name a certificate by its
issuer's serial and compare what the issuer signed (the TBS), never a hash over the whole encoding.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# Bounded: issued certificates come from the store (current certificates of identities), one entry
# each; parsing one costs about as much as a lookup in a cache this size.
MAX_CACHED = 4096


@dataclass(frozen=True)
class IssuedFacts:
    serial: int
    tbs_sha256: bytes  # SHA-256 of the TBSCertificate: the same for every encoding of one certificate
    spki: bytes  # the subject's public key in full (SubjectPublicKeyInfo DER)


def facts(cert: x509.Certificate) -> IssuedFacts:
    return IssuedFacts(
        serial=cert.serial_number,
        tbs_sha256=hashlib.sha256(cert.tbs_certificate_bytes).digest(),
        spki=cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
    )


@lru_cache(maxsize=MAX_CACHED)
def issued_facts(der: bytes) -> IssuedFacts:
    """The facts of a certificate this service stored (DER), parsed once per container."""
    return facts(x509.load_der_x509_certificate(der))


def issued_to(der: bytes, public_key: object) -> bool:
    """Whether the certificate ``der`` is for ``public_key``, compared in full (curve and point; False for
    a key of another type). Cheaper than ``issued_facts`` for a certificate seen once (a renewal)."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return False
    return bool(x509.load_der_x509_certificate(der).public_key() == public_key)


@lru_cache(maxsize=MAX_CACHED)
def issuer_of(der: bytes) -> tuple[bytes, bytes | None]:
    """(issuer name DER, authority key identifier) of a certificate this service stored: together they
    name the CA key and name it was issued under (None: no key identifier in it)."""
    cert = x509.load_der_x509_certificate(der)
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        aki = None
    return cert.issuer.public_bytes(), aki


def subject_of(cert: x509.Certificate) -> tuple[bytes, bytes | None]:
    """(subject name DER, subject key identifier) of a CA certificate: what ``issuer_of`` matches."""
    try:
        ski: bytes | None = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        ski = None
    return cert.subject.public_bytes(), ski
