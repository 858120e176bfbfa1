"""Identifiers every layer checks (tenants, certificates) and the reference documents' time form."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from chalicelib.errors import InvalidInput, NotFound

TENANT_RE = re.compile(r"^[a-zA-Z0-9_-]{2,64}$")
CERT_ID_RE = re.compile(r"^[0-9a-f]{96}$")


def validate_tenant_id(tenant_id: str) -> str:
    if not TENANT_RE.fullmatch(tenant_id or ""):
        raise InvalidInput("tenant ids are 2 to 64 characters of letters, digits, '_' and '-'", field="tenant")
    return tenant_id


def validate_cert_id(tenant_id: str, cert_id: str, field: str = "id") -> str:
    """Accept the 96-hex id, or the ``TENANT:<hex>`` form the reference configuration uses
    (also with its colon percent-encoded, as some clients send a path segment)."""
    if "%3a" in cert_id.lower():
        cert_id = cert_id.replace("%3A", ":").replace("%3a", ":")
    if ":" in cert_id:
        prefix, _, cert_id = cert_id.partition(":")
        if prefix != tenant_id:
            raise NotFound("no such certificate", field=field)
    cert_id = cert_id.lower()
    if not CERT_ID_RE.fullmatch(cert_id):
        raise InvalidInput(
            "a certificate id is the 96 hex digits of the SHA-384 of its DER, alone or as TENANT:<id>", field=field
        )
    return cert_id


def json_time(dt: datetime | None) -> str | None:
    """A time as the admin API's JSON shows it: ISO-8601 UTC with a Z; None stays None."""
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z") if dt else None


def naive_iso(dt: datetime) -> str:
    """The reference documents' timestamp form: naive UTC ISO-8601 with microseconds."""
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
