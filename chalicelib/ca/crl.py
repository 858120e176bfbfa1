"""CRL construction and the RFC 5280 revocation reason names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.ca.keys import signature_hash
from chalicelib.errors import InvalidInput

# RFC 5280 §5.3.1 CRLReason names (removeFromCRL is for delta CRLs, not a revocation).
REASONS: dict[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "cACompromise": x509.ReasonFlags.ca_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "certificateHold": x509.ReasonFlags.certificate_hold,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
    "aACompromise": x509.ReasonFlags.aa_compromise,
}


def parse_reason(value: object) -> str:
    if value is None:
        return "unspecified"
    if not isinstance(value, str) or value not in REASONS:
        raise InvalidInput("must be an RFC 5280 reason: " + ", ".join(REASONS), field="reason")
    return value


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: str


def build_crl(
    *,
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    entries: Iterable[RevokedEntry],
    number: int,
    this_update: datetime,
    next_update: datetime,
) -> x509.CertificateRevocationList:
    revoked: list[x509.RevokedCertificate] = []
    for entry in entries:
        item = x509.RevokedCertificateBuilder().serial_number(entry.serial).revocation_date(entry.revoked_at)
        if entry.reason != "unspecified":  # RFC 5280: omit the reason code rather than say unspecified
            item = item.add_extension(x509.CRLReason(REASONS[entry.reason]), critical=False)
        revoked.append(item.build())
    # One builder with the whole list: add_revoked_certificate() copies the list each call (quadratic).
    builder = (
        x509.CertificateRevocationListBuilder(revoked_certificates=revoked)
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    return builder.sign(issuer_key, signature_hash(issuer_key))
