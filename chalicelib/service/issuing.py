"""What every way of issuing a client certificate shares (SeaCat enrolment, PKCS#10 and EST): the
tenant's signing CA and key, and the records a certificate issued to an identity writes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography import x509

from chalicelib.cache import Missing
from chalicelib.context import current
from chalicelib.domain import CaCert, CertificateKind, CertificateRecord, IdentityRecord, Tenant
from chalicelib.errors import NotFound

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec


def ca_certificate(cert_id: str, der: bytes) -> x509.Certificate:
    """Parsed CA certificates, kept in the container (they never change once made)."""
    cache = current().caches.ca_certs
    cert = cache.get(cert_id)
    if isinstance(cert, Missing):
        cert = x509.load_der_x509_certificate(der)
        cache.put(cert_id, cert)
    return cert


@dataclass(frozen=True)
class Signer:
    entry: CaCert  # the tenant's active CA certificate
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def signer(tenant: Tenant) -> Signer:
    """The tenant's active CA certificate and its private key; NotFound (field ``tenant``) if it has none."""
    entry = tenant.active_ca_cert()
    if entry is None:
        raise NotFound("the tenant has no active CA certificate", field="tenant")
    return Signer(entry, ca_certificate(entry.cert_id, entry.der), current().keystore.load(tenant.key_of(entry)))


def issued_record(
    tenant_id: str,
    kind: CertificateKind,
    der: bytes,
    serial: int,
    validity: tuple[datetime, datetime],
    *,
    now: datetime,
    identity: str,
    ca_id: str,
    request_id: str,
) -> CertificateRecord:
    """The stored record of a client certificate just signed (DER), version 1."""
    from chalicelib.ca.builder import certificate_id

    not_before, not_after = validity
    return CertificateRecord(
        tenant_id=tenant_id,
        cert_id=certificate_id(der),
        kind=kind,
        serial=serial,
        der=der,
        not_before=not_before,
        not_after=not_after,
        created_at=now,
        modified_at=now,
        version=1,
        identity=identity,
        ca_id=ca_id,
        cr_id=request_id,
    )


def with_certificate(
    base: IdentityRecord, record: CertificateRecord, application: str, now: datetime
) -> IdentityRecord:
    """The identity once ``record`` is its current certificate (one more in its count)."""
    return replace(
        base,
        application=application,
        cert_id=record.cert_id,
        cert_serial=record.serial,
        cert_der=record.der,
        cert_not_before=record.not_before,
        cert_not_after=record.not_after,
        certificates=base.certificates + 1,
        modified_at=now,
    )
