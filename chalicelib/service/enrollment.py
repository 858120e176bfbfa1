"""SeaCat enrolment: decide on a CR (approval, renewal, duplicates) and issue its certificate.

The clients accept only "200 + DER certificate" in the same request, so every decision is
synchronous. A certificate is returned only once it is stored (one DynamoDB transaction), and
concurrent PUTs of the same key end with one certificate: the identity item is written with
optimistic locking and the loser answers with the winner's certificate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from chalicelib.context import current
from chalicelib.domain import (
    CaState,
    CertificateKind,
    IdentityRecord,
    RequestRecord,
    RequestState,
    Tenant,
    new_identity,
)
from chalicelib.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from chalicelib.seacat.codec import SeaCatRequest, decode_cr
from chalicelib.service import audit
from chalicelib.service.issuing import ca_certificate, issued_record, signer, with_certificate
from chalicelib.settings import get_settings

log = logging.getLogger("seacat.enroll")


@dataclass(frozen=True)
class EnrollResult:
    status: int  # 200: der is the certificate; 202: pending manual approval
    der: bytes | None
    identity: str
    cr_id: str
    outcome: str  # issued | renewed | existing | pending


def same_key(cert_der: bytes, public_key: object) -> bool:
    """Whether the certificate ``cert_der`` is for ``public_key`` (compared in full)."""
    from chalicelib.ca.issued import issued_to

    return issued_to(cert_der, public_key)


def seacat_tenant(tenant_id: str) -> Tenant:
    from chalicelib.service.cas import note_ca_expiry
    from chalicelib.service.tenants import cached_tenant

    tenant = cached_tenant(tenant_id)
    if tenant is None or not tenant.config.seacat or tenant.active_ca_cert() is None:
        raise NotFound("no SeaCat PKI here")
    note_ca_expiry(tenant)
    return tenant


def from_active_ca(tenant: Tenant, cert_der: bytes) -> bool:
    """Whether a certificate of the tenant's was issued under its active CA certificate's name and key
    (by it, or by an earlier certificate of the same key and name): one that was not (a rotation or a
    retirement since, or a revocation) is renewed at the client's next request, whatever its window."""
    from chalicelib.ca.issued import issuer_of, subject_of

    active = tenant.active_ca_cert()
    return active is not None and issuer_of(cert_der) == subject_of(ca_certificate(active.cert_id, active.der))


def _request_record(
    tenant_id: str, cr: SeaCatRequest, state: RequestState, reason: str, now: datetime, cert_id: str | None = None
) -> RequestRecord:
    return RequestRecord(
        tenant_id=tenant_id,
        cr_id=cr.cr_id,
        identity=cr.identity,
        application=cr.application,
        der=cr.der,
        state=state,
        created_at=now,
        modified_at=now,
        version=0,
        attributes=cr.attributes,
        created_raw=cr.created_at_raw,
        valid_to_raw=cr.valid_to_raw,
        reason=reason,
        cert_id=cert_id,
    )


def _record_outcome(tenant_id: str, cr: SeaCatRequest, state: RequestState, reason: str, now: datetime) -> None:
    store = current().certificates

    try:
        event = audit.entry(
            "cr.rejected" if state == RequestState.REJECTED else "cr.received",
            tenant_id,
            cr.cr_id,
            state,
            {"identity": cr.identity, "application": cr.application, "reason": reason},
        )
        existing = store.get_request(tenant_id, cr.cr_id)
        if existing is not None and existing.state == RequestState.ISSUED:
            # The same CR sent again after its certificate was issued (then blocked or revoked):
            # its record keeps the issue and its certificate; the refusal goes to the audit trail.
            current().audit.put(event)
        else:
            store.save_request(_request_record(tenant_id, cr, state, reason, now), [event])
    except Exception:  # the refusal stands even if its record cannot be written
        log.warning("could not record request outcome", extra={"tenant": tenant_id, "cr_id": cr.cr_id})


def webhook_payload(tenant_id: str, cr: SeaCatRequest, now: datetime) -> dict[str, object]:
    """The reference documentation's approve payload (the CR's "cryptomaterial meta")."""
    from chalicelib.service.ids import naive_iso

    info: dict[str, object] = {"application": cr.application, "identity": cr.identity}
    if cr.attributes:
        info["attributes"] = [list(a) for a in cr.attributes]
        for key, value in cr.attributes:
            info.setdefault(key, value)
    return {
        "_c": naive_iso(now),
        "_id": cr.cr_id,
        "_m": naive_iso(now),
        "_v": 1,
        "data": cr.der.hex(),
        "family": "seacat",
        "info": info,
        "label": f"{cr.identity} ({cr.application})",
        "seacat_application": cr.application,
        "seacat_identity": cr.identity,
        "tenant": tenant_id,
        "type": "cr",
    }


def enroll(tenant_id: str, body: bytes, *, now: datetime | None = None) -> EnrollResult:
    from chalicelib.ca.builder import in_renewal_window

    store = current().certificates

    tenant = seacat_tenant(tenant_id)
    cr = decode_cr(body)
    now = now or datetime.now(UTC)
    identity = store.get_identity(tenant_id, cr.identity)

    why = identity.refusal() if identity is not None else None
    if why is not None:
        _record_outcome(tenant_id, cr, RequestState.REJECTED, why, now)
        raise Forbidden(why)
    if identity is not None and identity.cert_der is not None and not same_key(identity.cert_der, cr.public_key):
        # The identity is an 80-bit truncation of the key's hash: a different key that truncates to
        # the same identity is not its owner, and gets neither its certificate nor a renewal.
        why = "not the key this identity enrolled with"
        _record_outcome(tenant_id, cr, RequestState.REJECTED, why, now)
        raise Forbidden(why)

    renewal = identity is not None and identity.cert_der is not None
    if identity is not None and identity.cert_der is not None:
        assert identity.cert_not_before is not None and identity.cert_not_after is not None
        if (
            now < identity.cert_not_after
            and not in_renewal_window(identity.cert_not_before, identity.cert_not_after, now)
            and from_active_ca(tenant, identity.cert_der)
        ):
            # A duplicate (Android sends near-simultaneous PUTs) or an early renewal: same answer.
            # (A certificate from a CA no longer active is renewed at once: the fleet moves over.)
            return EnrollResult(200, identity.cert_der, cr.identity, cr.cr_id, "existing")

    if not renewal or tenant.config.approve_renewals:
        pending = _approve(tenant, cr, identity, now)
        if pending is not None:
            return pending

    return _issue(tenant, cr, identity, now, "renewed" if renewal else "issued")


def _approve(tenant: Tenant, cr: SeaCatRequest, identity: IdentityRecord | None, now: datetime) -> EnrollResult | None:
    """Run the tenant's approval step; returns a pending result, raises on refusal, None to issue."""
    from chalicelib.service import webhook

    store = current().certificates

    config = tenant.config
    if config.manual_approval and not (identity is not None and identity.approved):
        existing = store.get_request(tenant.tenant_id, cr.cr_id)
        if existing is not None and existing.state == RequestState.REJECTED:
            raise Forbidden("request was rejected")
        if existing is None or existing.state != RequestState.PENDING:
            event = audit.entry(
                "cr.received",
                tenant.tenant_id,
                cr.cr_id,
                "pending",
                {"identity": cr.identity, "application": cr.application},
            )
            store.save_request(
                _request_record(tenant.tenant_id, cr, RequestState.PENDING, "awaiting manual approval", now), [event]
            )
        return EnrollResult(202, None, cr.identity, cr.cr_id, "pending")
    if config.approve and not config.manual_approval:
        timeout = config.webhook_timeout or get_settings().webhook_timeout_seconds
        verdict = webhook.call(
            config.approve, webhook_payload(tenant.tenant_id, cr, now), timeout, tenant_id=tenant.tenant_id
        )
        log.info(
            "approve webhook answered",
            extra={"tenant": tenant.tenant_id, "identity": cr.identity, "outcome": verdict.reason},
        )
        if verdict.failed:
            _record_outcome(tenant.tenant_id, cr, RequestState.FAILED, verdict.reason, now)
            raise Unavailable("approval webhook failed", retry_after=30)
        if not verdict.approved:
            _record_outcome(tenant.tenant_id, cr, RequestState.REJECTED, verdict.reason, now)
            raise Forbidden("request refused by the approval webhook")
    return None


def _issue(
    tenant: Tenant, cr: SeaCatRequest, identity: IdentityRecord | None, now: datetime, outcome: str
) -> EnrollResult:
    from cryptography.hazmat.primitives.serialization import Encoding

    from chalicelib.ca import builder

    store = current().certificates

    ca = signer(tenant)  # seacat_tenant() checked it has one
    not_before, not_after = builder.client_validity(
        now, tenant.config.lifetime_days, ca_not_after=ca.certificate.not_valid_after_utc
    )
    if not_after <= now:
        raise Unavailable("the tenant's CA certificate expires too soon to issue from", retry_after=3600)
    if identity is not None and identity.cert_der is not None and identity.cert_not_after is not None:
        if not_after <= identity.cert_not_after and from_active_ca(tenant, identity.cert_der):
            # The CA's expiry caps notAfter: a new certificate would not outlive the current one
            # (clients would renew again at once, for ever), so the current one stands.
            return EnrollResult(200, identity.cert_der, cr.identity, cr.cr_id, "existing")
    serial = builder.random_serial()
    crl_url, ocsp_url = tenant.issued_urls(ca.entry.cert_id)
    cert = builder.build_client_certificate(
        public_key=cr.public_key,
        identity=cr.identity,
        issuer=ca.certificate,
        issuer_key=ca.key,
        serial=serial,
        not_before=not_before,
        not_after=not_after,
        crl_url=crl_url,
        ocsp_url=ocsp_url,
    )
    der = cert.public_bytes(Encoding.DER)
    record = issued_record(
        tenant.tenant_id,
        CertificateKind.SEACAT,
        der,
        serial,
        (not_before, not_after),
        now=now,
        identity=cr.identity,
        ca_id=ca.entry.cert_id,
        request_id=cr.cr_id,
    )
    cert_id = record.cert_id
    base = identity or new_identity(tenant.tenant_id, cr.identity, cr.application)
    updated = with_certificate(base, record, cr.application, now)
    request = _request_record(tenant.tenant_id, cr, RequestState.ISSUED, outcome, now, cert_id)
    try:
        event = audit.entry(
            "certificate.renewed" if outcome == "renewed" else "certificate.issued",
            tenant.tenant_id,
            cert_id,
            outcome,
            {"identity": cr.identity, "serial": format(serial, "x"), "cr": cr.cr_id, "notAfter": str(not_after)},
            actor="client",
        )
        store.store_issued(record, updated, request, [event])
    except Conflict:
        # A concurrent PUT of the same key won: answer with its certificate if it is current.
        winner = store.get_identity(tenant.tenant_id, cr.identity)
        if winner is not None and winner.cert_der is not None and winner.cert_not_after is not None:
            if winner.refusal() is not None or not same_key(winner.cert_der, cr.public_key):
                raise Forbidden("identity is blocked or its certificate is revoked") from None
            if (
                winner.cert_not_before is not None
                and not builder.in_renewal_window(winner.cert_not_before, winner.cert_not_after, now)
                and from_active_ca(tenant, winner.cert_der)
            ):
                return EnrollResult(200, winner.cert_der, cr.identity, cr.cr_id, "existing")
        raise Unavailable("a concurrent request changed this identity, retry", retry_after=1) from None
    return EnrollResult(200, der, cr.identity, cr.cr_id, outcome)  # logged by its audit event


def get_identity_certificate(tenant_id: str, identity: str) -> bytes:
    """DER of the identity's newest valid certificate (public: the Android PeerProvider)."""
    from chalicelib.seacat.codec import IDENTITY_RE

    store = current().certificates

    from chalicelib.service.cas import issuers_of

    tenant = seacat_tenant(tenant_id)
    if not IDENTITY_RE.fullmatch(identity):
        raise InvalidInput("an identity is 16 characters of A-Z and 2-7", field="identity")
    record = store.get_identity(tenant_id, identity)
    now = datetime.now(UTC)
    if (
        record is None
        or record.cert_der is None
        or record.refusal() is not None
        or record.cert_not_after is None
        or record.cert_not_after <= now
    ):
        raise NotFound("no valid certificate for this identity")
    if any(ca.state == CaState.REVOKED for ca in tenant.cas):
        issuers = issuers_of(tenant, record.cert_der)
        if issuers and all(ca.state == CaState.REVOKED for ca in issuers):
            raise NotFound("no valid certificate for this identity")  # its CA was revoked
    return record.cert_der
