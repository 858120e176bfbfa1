"""Admin side of SeaCat enrolment: certificate requests, approvals, identities."""

from __future__ import annotations

import re
from dataclasses import replace

from chalicelib.context import current
from chalicelib.domain import (
    CertificateRecord,
    IdentityRecord,
    RequestKind,
    RequestRecord,
    RequestState,
    new_identity,
)
from chalicelib.errors import Conflict, InvalidInput, NotFound
from chalicelib.service import audit

CR_ID_RE = re.compile(r"^[0-9a-f]{96}$")
STATES = ("pending",)
MAX_PAGE = 100


def page_size(raw: str | None, default: int = 50) -> int:
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidInput(f"must be a whole number from 1 to {MAX_PAGE}", field="limit")
    return int(raw)


def _identity(value: str) -> str:
    from chalicelib.seacat.codec import IDENTITY_RE

    if not IDENTITY_RE.fullmatch(value):
        raise InvalidInput("an identity is 16 characters of A-Z and 2-7", field="identity")
    return value


def list_requests(
    tenant_id: str, state: str | None, limit: int, next_token: str | None
) -> tuple[list[RequestRecord], str | None]:
    from chalicelib.service.tenants import get_tenant

    store = current().certificates

    get_tenant(tenant_id)
    if state != "pending":
        raise InvalidInput("list requests by state: only state=pending is indexed", field="state")
    return store.list_pending(tenant_id, limit=limit, next_token=next_token)


def get_request(tenant_id: str, cr_id: str) -> RequestRecord:
    from chalicelib.service.tenants import get_tenant

    store = current().certificates

    get_tenant(tenant_id)
    cr_id = cr_id.lower()
    if not CR_ID_RE.fullmatch(cr_id):
        raise InvalidInput("a request id is the 96 hex digits of the SHA-384 of the CR", field="id")
    record = store.get_request(tenant_id, cr_id)
    if record is None:
        raise NotFound("no such request", field="id")
    return record


def request_with_certificate(tenant_id: str, cr_id: str) -> tuple[RequestRecord, CertificateRecord | None]:
    """A CR and the certificate issued for it, if any (its revocation shows in the CR's metadata)."""
    record = get_request(tenant_id, cr_id)
    certificate = current().certificates.get_certificate(tenant_id, record.cert_id) if record.cert_id else None
    return record, certificate


def decide(tenant_id: str, cr_id: str, approve: bool, principal_id: str) -> tuple[RequestRecord, IdentityRecord]:
    """Approve or reject a pending request. A SeaCat CR's approval applies to its identity: the
    client's next PUT with the same key gets its certificate. A CSR's approval issues its
    certificate now (``csr.approve``). Deciding the same way twice answers the state."""
    store = current().certificates

    if approve and get_request(tenant_id, cr_id).kind == RequestKind.CSR:
        from chalicelib.service import csr

        outcome = csr.approve(tenant_id, cr_id, principal_id)
        issued = get_request(tenant_id, cr_id)
        identity = store.get_identity(tenant_id, outcome.identity)
        return issued, identity or new_identity(tenant_id, outcome.identity, outcome.profile)
    target = RequestState.APPROVED if approve else RequestState.REJECTED
    for _ in range(3):
        request = get_request(tenant_id, cr_id)
        identity = store.get_identity(tenant_id, request.identity) or new_identity(
            tenant_id, request.identity, request.application
        )
        if request.state == target:
            return request, identity
        if request.state != RequestState.PENDING:
            raise Conflict(f"the request is {request.state}, not pending", field="id")
        decided = replace(request, state=target, decided_by=principal_id, reason=f"{target} by an administrator")
        decided_identity = replace(identity, approved=True) if approve else identity
        event = audit.entry(
            "cr.approved" if approve else "cr.rejected",
            tenant_id,
            cr_id,
            target,
            {"identity": request.identity, "application": request.application},
        )
        try:
            store.decide(decided, decided_identity, [event])
        except Conflict:
            continue  # decided concurrently, or its identity moved (a revocation, a renewal): read again
        fresh = store.get_request(tenant_id, cr_id)
        return (fresh or decided), (store.get_identity(tenant_id, request.identity) or decided_identity)
    raise Conflict("the request or its identity keeps changing, retry", field="id")


def identity_status(tenant_id: str, identity: str) -> IdentityRecord:
    from chalicelib.service.tenants import get_tenant

    store = current().certificates

    get_tenant(tenant_id)
    record = store.get_identity(tenant_id, _identity(identity))
    if record is None:
        raise NotFound("no such identity", field="identity")
    return record


def list_identity_certificates(
    tenant_id: str, identity: str, limit: int, next_token: str | None
) -> tuple[list[CertificateRecord], str | None]:
    store = current().certificates

    identity_status(tenant_id, identity)
    return store.list_identity_certificates(tenant_id, identity, limit=limit, next_token=next_token)


def set_blocked(tenant_id: str, identity: str, blocked: bool) -> IdentityRecord:
    """Block or unblock an identity; blocking one not seen yet pre-empts its enrolment."""
    from chalicelib.service.tenants import get_tenant

    store = current().certificates

    get_tenant(tenant_id)
    _identity(identity)
    for _ in range(3):
        record = store.get_identity(tenant_id, identity) or new_identity(tenant_id, identity, None)
        if record.blocked == blocked:
            return record
        try:
            event = audit.entry("identity.blocked" if blocked else "identity.unblocked", tenant_id, identity, "ok")
            return store.save_identity(replace(record, blocked=blocked), [event])
        except Conflict:
            continue
    raise Conflict("the identity keeps changing, retry", field="identity")
