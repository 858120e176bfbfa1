"""A tenant's CA certificates: creating one from the JSON spec, the public bundle, certificate reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.context import current
from chalicelib.domain import CertificateKind, CertificateRecord
from chalicelib.errors import Conflict, InvalidInput, NotFound
from chalicelib.service import audit
from chalicelib.service.ids import validate_cert_id, validate_tenant_id
from chalicelib.service.tenants import cached_tenant, forget_cached, get_tenant

# A tenant's CA certificates live on its one DynamoDB item (at most 400 KB): bound their number
# and size so the item can never fill up (32 x 8 KiB, with room for the rest).
MAX_CA_CERTIFICATES = 32
MAX_CA_DER = 8 * 1024


def create_self_signed(tenant_id: str, body: object) -> CertificateRecord:
    from cryptography.hazmat.primitives.serialization import Encoding

    from chalicelib.ca import builder, spec

    keystore = current().keystore
    store = current().tenants

    tenant = get_tenant(tenant_id)
    if len(tenant.cas) >= MAX_CA_CERTIFICATES:
        raise Conflict(f"a tenant keeps at most {MAX_CA_CERTIFICATES} CA certificates", field="tenant")
    now = datetime.now(UTC)
    parsed = spec.parse_certificate_spec(body, now=now)
    _check_issuing_ca(parsed, now)
    key = keystore.load(tenant.key_secret)
    try:
        cert = builder.build_self_signed(parsed, key)
    except ValueError as exc:  # what the spec parser let through but X.509 cannot encode
        raise InvalidInput(f"the certificate cannot be built: {exc}", field="extensions") from None
    der = cert.public_bytes(Encoding.DER)
    if len(der) > MAX_CA_DER:
        raise InvalidInput(f"the CA certificate would be {len(der)} bytes; at most {MAX_CA_DER}", field="body")
    record = CertificateRecord(
        tenant_id=tenant_id,
        cert_id=builder.certificate_id(der),
        kind=CertificateKind.CA,
        serial=cert.serial_number,
        der=der,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        created_at=now,
        modified_at=now,
        version=1,
    )
    event = audit.entry(
        "ca.created",
        tenant_id,
        record.cert_id,
        "active",
        {
            "subject": cert.subject.rfc4514_string(),
            "serial": format(record.serial, "x"),
            "notAfter": str(record.not_after),
        },
    )
    store.add_ca(tenant, record, [event])
    forget_cached(tenant_id)
    return record


# A CA certificate's notBefore may lead the clock by this much (a spec's "now" is resolved here).
CA_CLOCK_SKEW = timedelta(minutes=5)


def _check_issuing_ca(parsed: Any, now: datetime) -> None:
    """The new certificate becomes the tenant's issuing CA at once: it must be able to be one."""
    from cryptography import x509

    from chalicelib.ca import spec

    if not parsed.is_ca:
        raise InvalidInput(
            "the tenant's CA certificate needs basicConstraints with CA true", field="extensions.basicConstraints"
        )
    for ext in parsed.extensions:
        if isinstance(ext.value, x509.KeyUsage) and not (ext.value.key_cert_sign and ext.value.crl_sign):
            raise InvalidInput(
                "the tenant's CA signs certificates and CRLs: keyUsage needs keyCertSign and cRLSign",
                field="extensions.keyUsage",
            )
    if parsed.not_before > now + CA_CLOCK_SKEW:
        raise InvalidInput(
            "must not be in the future: the CA is used as soon as it is made", field="validity.notBefore"
        )
    if parsed.not_after <= now:
        raise InvalidInput("must be in the future", field="validity.notAfter")
    # Served in the public bundle and trusted for client authentication: nothing more than that.
    spec.check_client_ca(parsed, now=now)


def ca_bundle(tenant_id: str) -> bytes:
    """Every CA certificate of the tenant as one PEM bundle (an NGINX ssl_client_certificate file)."""
    from chalicelib.ca.pem import der_to_pem

    tenant = cached_tenant(tenant_id)
    if tenant is None or not tenant.cas:
        raise NotFound(f"tenant {tenant_id} has no CA certificate", field="tenant")
    return b"".join(der_to_pem(ca.der) for ca in tenant.cas)


def get_certificate(tenant_id: str, cert_id: str) -> CertificateRecord:

    validate_tenant_id(tenant_id)
    cert_id = validate_cert_id(tenant_id, cert_id)
    record = current().certificates.get_certificate(tenant_id, cert_id)
    if record is None:
        raise NotFound("no such certificate", field="id")
    return record
