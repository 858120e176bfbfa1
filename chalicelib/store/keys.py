"""Sort keys and audit page tokens every storage adapter shares (DynamoDB, in-memory, SQLite).

Pure functions of the standard library only: importing this module imports no AWS library, so the
adapters that run without AWS (chalicelib/store/memory.py, chalicelib/store/sqlite/) use it too.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime, timedelta

from chalicelib.domain import AuditEvent
from chalicelib.errors import InvalidInput

RETENTION = timedelta(days=400)  # how long an audit event is kept (DynamoDB's TTL `expires_at`)

_MAX_TOKEN = 256  # characters: a token is the hex of about 60 bytes
_CURSOR = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z#[0-9a-f]{16}")
_HEX = re.compile(r"(?:[0-9a-f]{2})+")


def audit_event(
    tenant: str | None,
    event: str,
    actor: str,
    subject: str | None,
    outcome: str | None,
    details: dict[str, object] | None,
    at: datetime | None,
) -> AuditEvent:
    """The audit entry the adapters without AWS hand to writes (the port's ``item``): its time, now by
    default, and a random 64-bit event id that orders events of the same microsecond."""
    return AuditEvent(tenant, at or datetime.now(UTC), event, actor, subject, outcome, details, secrets.token_hex(8))


def iso(dt: datetime) -> str:
    """UTC to the microsecond, ``2024-05-01T12:00:00.000000Z``: fixed width, so it sorts by time."""
    return dt.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def sort_key(at: datetime, event_id: str) -> str:
    """An audit event's sort key: its time, then its (16-hex) id."""
    return f"{iso(at)}#{event_id}"


def page_token(before: str) -> str:
    return json.dumps({"before": before}).encode().hex()


def page_cursor(token: str) -> str:
    """The sort key a ``next`` token carries, or 400 naming ``next`` for anything this list did not
    hand out (malformed, altered, or another list's token)."""
    refused = "not a page token of this list"
    if len(token) > _MAX_TOKEN or not _HEX.fullmatch(token):
        raise InvalidInput(refused, field="next")
    try:
        state = json.loads(bytes.fromhex(token).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(refused, field="next") from None
    if not isinstance(state, dict) or set(state) != {"before"}:
        raise InvalidInput(refused, field="next")
    before = state["before"]
    if not isinstance(before, str) or not _CURSOR.fullmatch(before) or page_token(before) != token:
        raise InvalidInput(refused, field="next")
    try:
        datetime.fromisoformat(before.split("#", 1)[0].replace("Z", "+00:00"))
    except ValueError:  # the right shape, not a date (month 13, ...)
        raise InvalidInput(refused, field="next") from None
    return before


def bounds(start: datetime, end: datetime, next_token: str | None) -> tuple[str, str]:
    """The page's sort-key range ``lower <= sk < upper``: [from, to), below the token's key.

    A bare time bound excludes the events at ``to`` ("{to}#id" sorts after "{to}") and includes
    those at ``from``."""
    upper = iso(_utc(end, "to"))
    if next_token:
        upper = min(upper, page_cursor(next_token))  # a token never reaches past `to`
    return iso(_utc(start, "from")), upper


def _utc(at: datetime, name: str) -> datetime:
    try:
        return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    except OverflowError:
        raise InvalidInput("must lie within years 0001-9999 in UTC", field=name) from None
