"""Audit events: who did what to which tenant and subject, and with what outcome.

Events that change state are written in the same DynamoDB transaction as the change (the store
functions take an ``audit`` entry), so the trail has neither phantom nor missing events. Each is
also logged (logger ``seacat.audit``) for CloudWatch.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib import observability
from chalicelib.context import current
from chalicelib.errors import InvalidInput

log = logging.getLogger("seacat.audit")

EVENTS = (
    "tenant.created",
    "tenant.updated",
    "key.generated",
    "key.imported",
    "ca.created",
    "ca.retired",
    "ca.revoked",
    "key.deletion_scheduled",
    "ocsp.signer_issued",
    "cr.received",
    "cr.approved",
    "cr.rejected",
    "csr.received",
    "csr.approved",
    "csr.rejected",
    "profile.created",
    "profile.updated",
    "profile.deleted",
    "certificate.issued",
    "certificate.renewed",
    "certificate.revoked",
    "identity.blocked",
    "identity.unblocked",
    "identity.revoked",
    "token.created",
    "token.revoked",
    "authentication.denied",
    "gateway_credential.created",
    "gateway_credential.dropped",
    "est_credential.created",
    "est_credential.used",
    "est_credential.revoked",
)
MAX_RANGE = timedelta(days=31)
FIRST = datetime.min.replace(tzinfo=UTC)  # the earliest time a query can name


def entry(
    event: str,
    tenant: str | None,
    subject: str | None = None,
    outcome: str | None = None,
    details: dict[str, Any] | None = None,
    actor: str | None = None,
) -> Any:
    """An audit item to write with the change it records (an opaque store object)."""
    store = current().audit

    assert event in EVENTS, event
    who = actor or observability.context().get("actor") or "anonymous"
    # The event is stored durably in the audit table; the log line is for debugging only.
    if log.isEnabledFor(logging.DEBUG):
        log.debug(event, extra={"audit_event": event, "subject": subject, "outcome": outcome, "audit_tenant": tenant})
    return store.item(tenant, event, who, subject, outcome, details)


def record(
    event: str,
    tenant: str | None,
    subject: str | None = None,
    outcome: str | None = None,
    details: dict[str, Any] | None = None,
    actor: str | None = None,
) -> None:
    """Write an event that has no state change of its own (an authentication denied)."""
    store = current().audit

    store.put(entry(event, tenant, subject, outcome, details, actor))


def _time(value: str | None, field: str) -> datetime | None:
    """An ISO-8601 date-time in UTC (no offset: UTC); 400 naming ``field`` if it is not one, or if
    it falls outside what can be represented (years 0001-9999 in UTC)."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("must be an ISO-8601 date-time", field=field) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is in year 10000 in UTC, 0001-01-01T03:00+05:00 in year 0
        raise InvalidInput(
            "out of range: must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z in UTC", field=field
        ) from None


def search(
    tenant: str | None,
    start: str | None,
    end: str | None,
    event: str | None,
    limit: int,
    next_token: str | None,
) -> tuple[list[dict[str, object]], str | None]:
    store = current().audit

    since = _time(start, "from")
    until = _time(end, "to") or datetime.now(UTC)
    if since is None:  # a day before `to`, or as far back as can be represented
        since = until - timedelta(days=1) if until - FIRST > timedelta(days=1) else FIRST
        if since >= until:
            raise InvalidInput("must be after 0001-01-01T00:00:00Z", field="to")
    if since >= until:
        raise InvalidInput("must be before 'to'", field="from")
    if until - since > MAX_RANGE:
        raise InvalidInput("a query spans at most 31 days", field="from")
    if event is not None and event not in EVENTS:
        raise InvalidInput("unknown event type; one of " + ", ".join(EVENTS), field="type")
    events, token = store.query(tenant, since, until, event, limit, next_token)
    return [
        {
            "id": e.event_id,
            "at": e.at.isoformat().replace("+00:00", "Z"),
            "type": e.event,
            "tenant": e.tenant,
            "actor": e.actor,
            "subject": e.subject,
            "outcome": e.outcome,
            "details": e.details,
        }
        for e in events
    ], token
