"""PKCS#10 enrolment under a tenant's certificate profiles: the use case behind ``POST
/{tenant}/x509/sign?profile=NAME`` and EST (RFC 7030), and the approval of a pending CSR.

A CSR's request id is the SHA-384 of its DER, so the same CSR sent again is the same request: while
it is pending the answer is 202 again, once issued the same certificate (EST clients poll so). A
CSR's key is filed under an identity of its own (``ca.csr.csr_identity``): its certificates are
listed, blocked and revoked as a SeaCat identity's are, and the CRL covers them. Each CSR is
approved on its own (a CSR says what it asks for), whatever was approved for its key before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509

from chalicelib.ca.profiles import SEACAT, Profile, seacat_profile
from chalicelib.context import current
from chalicelib.domain import (
    CertificateKind,
    CertificateRecord,
    RequestKind,
    RequestRecord,
    RequestState,
    Tenant,
    new_identity,
)
from chalicelib.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from chalicelib.service import audit
from chalicelib.settings import get_settings

if TYPE_CHECKING:
    from chalicelib.ca.csr import Plan

log = logging.getLogger("seacat.csr")

ISSUED = "issued"
EXISTING = "existing"
PENDING = "pending"


@dataclass(frozen=True)
class CsrOutcome:
    """What became of a CSR: 200 with ``certificate`` (issued now, or earlier for the same CSR), or
    202 with only ``request_id`` (waiting for an administrator: ``PUT /{tenant}/seacat/cr/{id}/approve``)."""

    status: int  # 200 | 202
    outcome: str  # issued | existing | pending
    request_id: str
    identity: str
    profile: str
    certificate: CertificateRecord | None


def load_csr(body: bytes) -> x509.CertificateSigningRequest:
    """A CSR from PEM or DER bytes (InvalidInput, field ``csr``); its signature is checked by ``sign_csr``."""
    from chalicelib.ca.csr import load_csr as load

    return load(body)


def approval_mode(tenant: Tenant, profile: Profile) -> str:
    """auto | webhook | manual: the profile's, or else the tenant's (manual over webhook over auto)."""
    if profile.approval is not None:
        return profile.approval
    if tenant.config.manual_approval:
        return "manual"
    return "webhook" if tenant.config.approve else "auto"


def profiles_of(tenant: Tenant) -> list[Profile]:
    """The built-in seacat profile, then the tenant's in the order they were made."""
    return [seacat_profile(tenant.config.lifetime_days), *tenant.config.profiles]


def get_profile(tenant_id: str, name: str) -> Profile:
    """A profile of the tenant (``seacat`` included); NotFound (field ``profile``) otherwise."""
    from chalicelib.service.tenants import get_tenant

    return profile_of(get_tenant(tenant_id), name)


def profile_of(tenant: Tenant, name: str) -> Profile:
    if name == SEACAT:
        return seacat_profile(tenant.config.lifetime_days)
    profile = tenant.config.profile(name)
    if profile is None:
        raise NotFound(f"no profile {name!r}" if len(name) <= 63 else "no such profile", field="profile")
    return profile


def est_profile(tenant_id: str) -> Profile:
    """The tenant's default EST profile (its configuration's ``estProfile``); NotFound when it has none."""
    from chalicelib.service.tenants import cached_tenant

    tenant = cached_tenant(tenant_id)
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id}", field="tenant")
    if tenant.config.est_profile is None:
        raise NotFound("the tenant has no default EST profile (estProfile)", field="profile")
    return profile_of(tenant, tenant.config.est_profile)


def _issuing_tenant(tenant_id: str) -> Tenant:
    from chalicelib.service.cas import note_ca_expiry
    from chalicelib.service.tenants import cached_tenant

    tenant = cached_tenant(tenant_id)
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id}", field="tenant")
    if tenant.active_ca_cert() is None:
        raise NotFound("the tenant has no active CA certificate", field="tenant")
    note_ca_expiry(tenant)
    return tenant


def _request_record(
    tenant: Tenant,
    csr: x509.CertificateSigningRequest,
    identity: str,
    profile: Profile,
    state: RequestState,
    reason: str,
    now: datetime,
    *,
    cert_id: str | None = None,
    decided_by: str | None = None,
    created_at: datetime | None = None,
) -> RequestRecord:
    from cryptography.hazmat.primitives.serialization import Encoding

    from chalicelib.ca.csr import request_id

    return RequestRecord(
        tenant_id=tenant.tenant_id,
        cr_id=request_id(csr),
        identity=identity,
        application=profile.name,
        der=csr.public_bytes(Encoding.DER),
        state=state,
        created_at=created_at or now,
        modified_at=now,
        version=0,
        reason=reason,
        cert_id=cert_id,
        decided_by=decided_by,
        kind=RequestKind.CSR,
        profile=profile.name,
    )


def webhook_payload(
    tenant_id: str, csr: x509.CertificateSigningRequest, details: dict[str, object], now: datetime
) -> dict[str, object]:
    """The approve webhook's envelope, as for a SeaCat CR, with ``"type": "csr"`` and the CSR's details
    (``info``: profile, identity, requester, the CSR's subject, the subject and SANs the certificate
    would carry, key type, key usages and EKUs; ``data``: the CSR's DER in hex)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from chalicelib.ca.csr import request_id
    from chalicelib.service.ids import naive_iso

    return {
        "_c": naive_iso(now),
        "_id": request_id(csr),
        "_m": naive_iso(now),
        "_v": 1,
        "data": csr.public_bytes(Encoding.DER).hex(),
        "family": "x509",
        "info": details,
        "label": f"{details.get('issuedSubject') or details.get('identity')} ({details.get('profile')})",
        "profile": details.get("profile"),
        "tenant": tenant_id,
        "type": "csr",
    }


def _details(
    csr: x509.CertificateSigningRequest, plan: Plan, profile: Profile, identity: str, requester: str
) -> dict[str, object]:
    from chalicelib.ca.csr import describe

    return {"profile": profile.name, "identity": identity, "requester": requester, **describe(csr, plan)}


def sign_csr(
    tenant_id: str,
    csr: bytes | x509.CertificateSigningRequest,
    profile_name: str,
    *,
    requester: str,
    renewal: bool = False,
    now: datetime | None = None,
) -> CsrOutcome:
    """Check ``csr`` (PEM/DER bytes or parsed) against the tenant's profile ``profile_name``, run the
    approval step, issue and store the certificate.

    ``requester``: who asks, for the audit trail and the webhook (a token id, ``est:<username>``).
    ``renewal``: the caller proved possession of a current certificate of this tenant (EST
    simplereenroll): the approval step is skipped unless the tenant sets ``approveRenewals``.

    Raises InvalidInput (400, ``field`` names the CSR field outside the profile: ``csr``,
    ``publicKey``, ``signature``, ``subject.<attr>``, ``subjectAltName[i]``, ``keyUsage``,
    ``extendedKeyUsage[i]``, ``extensions.<oid>``; ``profile`` for the seacat profile), NotFound
    (tenant, profile, no active CA), Forbidden (rejected request, blocked or revoked identity,
    webhook refusal, a revoked certificate for the same CSR), Unavailable (webhook failure, the CA
    expires too soon)."""
    from chalicelib.ca.csr import csr_identity, plan, request_id

    tenant = _issuing_tenant(tenant_id)
    if profile_name == SEACAT:
        raise InvalidInput("the seacat profile issues to SeaCat CRs only (/{tenant}/seacat/enroll)", field="profile")
    profile = profile_of(tenant, profile_name)
    if not isinstance(csr, x509.CertificateSigningRequest):
        csr = load_csr(csr)
    checked = plan(profile, csr)
    now = now or datetime.now(UTC)
    store = current().certificates
    rid = request_id(csr)
    identity_name = csr_identity(csr.public_key())

    existing = store.get_request(tenant_id, rid)
    if existing is not None:
        if existing.kind != RequestKind.CSR:
            raise Conflict("this request id names a SeaCat CR", field="csr")
        if existing.profile != profile.name:
            raise Conflict(f"this CSR was sent under profile {existing.profile}: make a new CSR", field="profile")
        if existing.state == RequestState.PENDING:
            return CsrOutcome(202, PENDING, rid, identity_name, profile.name, None)
        if existing.state == RequestState.REJECTED and existing.decided_by is not None:
            # An administrator's rejection stands; the webhook's (or a blocked identity's) is asked again.
            raise Forbidden("this CSR was rejected")
        if existing.state == RequestState.ISSUED and existing.cert_id:
            issued = store.get_certificate(tenant_id, existing.cert_id)
            if issued is not None and issued.revoked_at is not None:
                raise Forbidden("this CSR's certificate was revoked: make a new CSR")
            if issued is not None and issued.not_after > now:
                return CsrOutcome(200, EXISTING, rid, identity_name, profile.name, issued)

    identity = store.get_identity(tenant_id, identity_name)
    why = identity.refusal() if identity is not None else None
    details = _details(csr, checked, profile, identity_name, requester)
    if why is not None:
        _record_refusal(tenant, csr, identity_name, profile, why, now, details)
        raise Forbidden(why)

    if not renewal or tenant.config.approve_renewals:
        mode = approval_mode(tenant, profile)
        if mode == "manual":
            request = _request_record(
                tenant, csr, identity_name, profile, RequestState.PENDING, "awaiting manual approval", now
            )
            event = audit.entry("csr.received", tenant_id, rid, PENDING, details, actor=requester)
            store.save_request(request, [event])
            return CsrOutcome(202, PENDING, rid, identity_name, profile.name, None)
        if mode == "webhook":
            _webhook(tenant, csr, identity_name, profile, details, now)
    return _issue(tenant, csr, checked, identity_name, profile, now, actor=requester, details=details)


def _webhook(
    tenant: Tenant,
    csr: x509.CertificateSigningRequest,
    identity: str,
    profile: Profile,
    details: dict[str, object],
    now: datetime,
) -> None:
    from chalicelib.service import webhook

    config = tenant.config
    if config.approve is None:
        # The profile asks for a webhook the tenant no longer has: fail closed.
        _record_refusal(tenant, csr, identity, profile, "no approve webhook configured", now, details, failed=True)
        raise Unavailable(
            f"profile {profile.name} needs the tenant's approve webhook, which is not set", retry_after=60
        )
    timeout = config.webhook_timeout or get_settings().webhook_timeout_seconds
    verdict = webhook.call(
        config.approve, webhook_payload(tenant.tenant_id, csr, details, now), timeout, tenant_id=tenant.tenant_id
    )
    log.info("approve webhook answered", extra={"tenant": tenant.tenant_id, "outcome": verdict.reason})
    if verdict.failed:
        _record_refusal(tenant, csr, identity, profile, verdict.reason, now, details, failed=True)
        raise Unavailable("approval webhook failed", retry_after=30)
    if not verdict.approved:
        _record_refusal(tenant, csr, identity, profile, verdict.reason, now, details)
        raise Forbidden("request refused by the approval webhook")


def _record_refusal(
    tenant: Tenant,
    csr: x509.CertificateSigningRequest,
    identity: str,
    profile: Profile,
    reason: str,
    now: datetime,
    details: dict[str, object],
    *,
    failed: bool = False,
) -> None:
    state = RequestState.FAILED if failed else RequestState.REJECTED
    record = _request_record(tenant, csr, identity, profile, state, reason, now)
    try:
        event = audit.entry(
            "csr.received" if failed else "csr.rejected",
            tenant.tenant_id,
            record.cr_id,
            str(state),
            {**details, "reason": reason},
        )
        existing = current().certificates.get_request(tenant.tenant_id, record.cr_id)
        if existing is not None and existing.state == RequestState.ISSUED:
            current().audit.put(event)  # the record keeps its issue; the refusal goes to the trail
        else:
            current().certificates.save_request(record, [event])
    except Exception:  # the refusal stands even if its record cannot be written
        log.warning("could not record a CSR's refusal", extra={"tenant": tenant.tenant_id})


def _issue(
    tenant: Tenant,
    csr: x509.CertificateSigningRequest,
    checked: Plan,
    identity_name: str,
    profile: Profile,
    now: datetime,
    *,
    actor: str,
    details: dict[str, object],
    decided_by: str | None = None,
    created_at: datetime | None = None,
) -> CsrOutcome:
    from cryptography.hazmat.primitives.serialization import Encoding

    from chalicelib.ca import builder
    from chalicelib.ca.csr import build_certificate, request_id, validity
    from chalicelib.service.issuing import issued_record, signer, with_certificate

    store = current().certificates
    ca = signer(tenant)
    hours = profile.lifetime_hours or tenant.config.lifetime_days * 24
    not_before, not_after = validity(now, timedelta(hours=hours), ca_not_after=ca.certificate.not_valid_after_utc)
    if not_after <= now:
        raise Unavailable("the tenant's CA certificate expires too soon to issue from", retry_after=3600)
    crl_url, ocsp_url = tenant.issued_urls(ca.entry.cert_id)
    rid = request_id(csr)
    for _ in range(3):
        serial = builder.random_serial()
        cert = build_certificate(
            plan=checked,
            public_key=csr.public_key(),
            issuer=ca.certificate,
            issuer_key=ca.key,
            serial=serial,
            not_before=not_before,
            not_after=not_after,
            crl_url=crl_url,
            ocsp_url=ocsp_url,
        )
        record = issued_record(
            tenant.tenant_id,
            CertificateKind.X509,
            cert.public_bytes(Encoding.DER),
            serial,
            (not_before, not_after),
            now=now,
            identity=identity_name,
            ca_id=ca.entry.cert_id,
            request_id=rid,
        )
        cert_id = record.cert_id
        identity = store.get_identity(tenant.tenant_id, identity_name)
        why = identity.refusal() if identity is not None else None
        if why is not None:
            raise Forbidden(why)
        base = identity or new_identity(tenant.tenant_id, identity_name, profile.name)
        updated = with_certificate(base, record, profile.name, now)
        request = _request_record(
            tenant,
            csr,
            identity_name,
            profile,
            RequestState.ISSUED,
            ISSUED,
            now,
            cert_id=cert_id,
            decided_by=decided_by,
            created_at=created_at,
        )
        events = [
            audit.entry(
                "certificate.issued",
                tenant.tenant_id,
                cert_id,
                ISSUED,
                {**details, "serial": format(serial, "x"), "request": rid, "notAfter": str(not_after)},
                actor=actor,
            )
        ]
        if decided_by is not None:
            events.append(
                audit.entry("csr.approved", tenant.tenant_id, rid, ISSUED, {"profile": profile.name}, actor=actor)
            )
        try:
            store.store_issued(record, updated, request, events)
        except Conflict:
            # The identity moved: this same CSR issued (or decided) concurrently, another CSR of the
            # same key, a revocation. Read again.
            fresh = store.get_request(tenant.tenant_id, rid)
            if fresh is not None and fresh.state == RequestState.ISSUED and fresh.cert_id:
                issued = store.get_certificate(tenant.tenant_id, fresh.cert_id)
                if issued is not None:
                    return CsrOutcome(200, EXISTING, rid, identity_name, profile.name, issued)
            if decided_by is not None and (fresh is None or fresh.state != RequestState.PENDING):
                raise Conflict("the request was decided concurrently", field="id") from None
            continue
        return CsrOutcome(200, ISSUED, rid, identity_name, profile.name, record)
    raise Unavailable("concurrent requests changed this key's identity, retry", retry_after=1)


def approve(tenant_id: str, request_id: str, principal_id: str, *, now: datetime | None = None) -> CsrOutcome:
    """An administrator approves a pending CSR: it is checked again against its profile as it is now
    and issued at once. Approving an issued one again answers its certificate (idempotent); one
    rejected, or whose profile is gone or no longer admits it, is a 409 and stays as it was."""
    from chalicelib.ca.csr import csr_identity, plan
    from chalicelib.service.approvals import get_request
    from chalicelib.service.tenants import get_tenant

    store = current().certificates
    record = get_request(tenant_id, request_id)
    if record.kind != RequestKind.CSR:
        raise InvalidInput("not a CSR", field="id")
    csr = x509.load_der_x509_csr(record.der)
    identity_name = csr_identity(csr.public_key())
    if record.state == RequestState.ISSUED and record.cert_id:
        issued = store.get_certificate(tenant_id, record.cert_id)
        return CsrOutcome(200, EXISTING, record.cr_id, identity_name, record.profile or "", issued)
    if record.state != RequestState.PENDING:
        raise Conflict(f"the request is {record.state}, not pending", field="id")
    tenant = get_tenant(tenant_id)
    try:
        profile = profile_of(tenant, record.profile or "")
        checked = plan(profile, csr)
    except (NotFound, InvalidInput) as exc:
        raise Conflict(f"the CSR no longer fits its profile {record.profile}: {exc.message}", field="id") from None
    details = _details(csr, checked, profile, identity_name, principal_id)
    return _issue(
        tenant,
        csr,
        checked,
        identity_name,
        profile,
        now or datetime.now(UTC),
        actor=principal_id,
        details=details,
        decided_by=principal_id,
        created_at=record.created_at,
    )
