"""Revocation (of one certificate, or of an identity with all its certificates) and the CRL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from chalicelib.cache import Missing
from chalicelib.context import current
from chalicelib.domain import CaCert, CertificateKind, CertificateRecord, IdentityRecord, Tenant
from chalicelib.errors import Conflict, InvalidInput, NotFound, Unavailable
from chalicelib.service import audit

CRL_VALIDITY = timedelta(days=1)


def revoke_certificate(tenant_id: str, cert_id: str, reason: object) -> CertificateRecord:
    """Revoke one certificate. Idempotent: revoking again answers the recorded state."""
    from chalicelib.ca.crl import parse_reason
    from chalicelib.service.cas import get_certificate

    store = current().certificates

    name = parse_reason(reason)
    record = get_certificate(tenant_id, cert_id)
    if record.kind == CertificateKind.CA:
        raise InvalidInput("a CA certificate is revoked with PUT /{tenant}/x509/ca/{caId}/revoke", field="id")
    for _ in range(5):
        if record.revoked_at is not None:
            return record  # revoked (now, or before): answer what is recorded
        identity = store.get_identity(tenant_id, record.identity) if record.identity else None
        try:
            event = audit.entry(
                "certificate.revoked",
                tenant_id,
                record.cert_id,
                name,
                {"identity": record.identity, "serial": format(record.serial, "x")},
            )
            store.revoke(record, name, identity, [event])
        except Conflict:
            pass  # revoked concurrently, or the transaction met another write: read and see
        _forget_crl(tenant_id)
        from chalicelib.service import gateway

        gateway.forget(tenant_id)
        record = get_certificate(tenant_id, record.cert_id)
    if record.revoked_at is None:
        raise Unavailable("the certificate could not be revoked for concurrent writes, retry", retry_after=1)
    return record


def revoke_identity(tenant_id: str, identity: str, reason: object) -> tuple[IdentityRecord, list[CertificateRecord]]:
    """Revoke an identity: it stops authenticating, enrolling and renewing, and each of its
    certificates is revoked. Idempotent; a retry completes an interrupted revocation."""
    from chalicelib.ca.crl import parse_reason
    from chalicelib.service.approvals import identity_status

    store = current().certificates

    name = parse_reason(reason)
    record = identity_status(tenant_id, identity)
    for _ in range(5):
        if record.revoked_at is not None:
            break
        try:
            event = audit.entry("identity.revoked", tenant_id, identity, name)
            record = store.save_identity(replace(record, revoked_at=datetime.now(UTC), revocation_reason=name), [event])
        except Conflict:
            record = identity_status(tenant_id, identity)
    else:
        raise Conflict("the identity keeps changing, retry", field="identity")
    revoked: list[CertificateRecord] = []
    next_token: str | None = None
    while True:
        page, next_token = store.list_identity_certificates(tenant_id, identity, limit=100, next_token=next_token)
        for cert in page:
            if cert.revoked_at is None:
                cert = revoke_certificate(tenant_id, cert.cert_id, record.revocation_reason or name)
            revoked.append(cert)
        if not next_token:
            break
    # The listing reads an eventually consistent index, so a certificate issued just before
    # the identity was revoked may be missing from it; the identity record (read strongly)
    # names the newest one, and enrolment cannot add another once the identity is revoked.
    newest = identity_status(tenant_id, identity).cert_id
    if newest is not None and newest not in {cert.cert_id for cert in revoked}:
        revoked.insert(0, revoke_certificate(tenant_id, newest, record.revocation_reason or name))
    from chalicelib.service import gateway

    gateway.forget(tenant_id)
    return identity_status(tenant_id, identity), revoked


def _forget_crl(tenant_id: str) -> None:
    current().caches.crls.discard(lambda key: key[0] == tenant_id)


def crl_der(tenant_id: str, ca_id: str | None = None) -> bytes:
    """The CRL (DER) of one of the tenant's CA certificates (``ca_id``; the active one by default).

    A CRL covers the certificates of its issuer (RFC 5280 §5): this one lists every revoked, unexpired
    certificate issued under a CA certificate with this one's name and key (its re-certifications), and
    is signed with that key under that name. Built from the sparse revoked-index (one item per revoked
    certificate) and kept in the container for a minute; thisUpdate (in milliseconds) doubles as the
    increasing CRL number.

    A retired CA certificate whose key is gone serves the final CRL signed before the key went, until
    it expires (its nextUpdate: the CA certificate's notAfter); a revoked one has none (its key is
    compromised: a CRL it signed proves nothing), 404.
    """
    from cryptography import x509

    from chalicelib.domain import CaState
    from chalicelib.service.ids import validate_cert_id
    from chalicelib.service.tenants import cached_tenant, get_tenant

    if ca_id is not None:
        ca_id = validate_cert_id(tenant_id, ca_id, field="ca_id")
    cache_key = (tenant_id, ca_id or "")
    crls = current().caches.crls  # kept a minute: CRL_CACHE_SECONDS in chalicelib/context.py
    hit = crls.get(cache_key)
    if not isinstance(hit, Missing):
        return hit
    tenant = cached_tenant(tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} has no CA certificate", field="tenant")
    if ca_id is None:
        chosen = tenant.active_ca_cert()
        if chosen is None:
            raise NotFound(f"tenant {tenant_id} has no active CA certificate", field="tenant")
    else:
        chosen = tenant.ca(ca_id)
        if chosen is None:  # made since the container's copy of the tenant, or none such
            tenant = get_tenant(tenant_id)
            chosen = tenant.ca(ca_id)
        if chosen is None:
            raise NotFound("no such CA certificate", field="ca_id")
    now = datetime.now(UTC).replace(microsecond=0)
    if chosen.state == CaState.REVOKED:
        raise NotFound(
            "this CA certificate is revoked: it publishes no CRL, and its certificates are refused", field="ca_id"
        )
    der: bytes | None = None
    if chosen.state == CaState.RETIRED:
        record = current().certificates.get_certificate(tenant_id, chosen.cert_id)
        if record is not None and record.final_crl is not None:
            final = x509.load_der_x509_crl(record.final_crl)
            if final.next_update_utc is not None and final.next_update_utc <= now:
                raise NotFound(
                    "this CA certificate is retired and every certificate it issued has expired", field="ca_id"
                )
            der = record.final_crl
    if der is None:
        der = sign_crl(tenant, chosen, now)
    crls.put(cache_key, der)
    return der


def sign_crl(tenant: Tenant, chosen: CaCert, now: datetime, *, next_update: datetime | None = None) -> bytes:
    """A CRL under ``chosen``'s name, signed with its key: the revoked, unexpired certificates issued
    under a CA certificate of that name and key."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from chalicelib.ca.crl import RevokedEntry, build_crl
    from chalicelib.service.issuing import ca_certificate

    key = tenant.key_of(chosen)
    issuer = ca_certificate(chosen.cert_id, chosen.der)
    same_issuer = {
        c.cert_id
        for c in tenant.cas
        if tenant.key_of(c) == key and ca_certificate(c.cert_id, c.der).subject == issuer.subject
    }
    entries = [
        RevokedEntry(serial, revoked_at, reason)
        for serial, revoked_at, reason, not_after, issued_by in current().certificates.iter_revoked(tenant.tenant_id)
        if not_after > now and (issued_by is None or issued_by in same_issuer)
    ]
    crl = build_crl(
        issuer=issuer,
        issuer_key=current().keystore.load(key),
        entries=entries,
        number=int(now.timestamp() * 1000),
        this_update=now,
        next_update=next_update or now + CRL_VALIDITY,
    )
    return crl.public_bytes(Encoding.DER)
