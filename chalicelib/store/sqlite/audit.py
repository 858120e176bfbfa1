"""AuditStore on SQLite: one row per event, keyed (tenant, sort key) as DynamoDB's items are.

The sort key, the [from, to) range and the page tokens are DynamoDB's (``chalicelib.store.keys``):
a page is the events below the token's sort key, newest first, so an event written between two
pages neither repeats nor shifts one. An event is kept ``RETENTION`` (400 days, DynamoDB's TTL);
a query never returns an expired one, and writes purge them in bounded batches, once an hour.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chalicelib.domain import AuditEvent
from chalicelib.store import keys
from chalicelib.store.sqlite.db import Database, now, text, time_of

PURGE_BATCH = 1000  # expired events deleted by one write at most
PURGE_INTERVAL = 3600.0  # seconds between purges (sooner while a full batch was found)

_INSERT = """INSERT INTO audit (tenant, sk, event, actor, subject, outcome, details, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)"""
_COLUMNS = "sk, event, actor, subject, outcome, details"
_QUERY = f"""SELECT {_COLUMNS} FROM audit
WHERE tenant = ? AND sk >= ? AND sk < ? AND expires_at > ?
ORDER BY sk DESC LIMIT ?"""
# The type filter reads its own index: a rare type in a long range reads its events only.
_QUERY_EVENT = f"""SELECT {_COLUMNS} FROM audit INDEXED BY audit_by_event
WHERE tenant = ? AND event = ? AND sk >= ? AND sk < ? AND expires_at > ?
ORDER BY sk DESC LIMIT ?"""
_PURGE = """DELETE FROM audit WHERE (tenant, sk) IN
(SELECT tenant, sk FROM audit WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)"""


def _row(entry: AuditEvent) -> tuple[Any, ...]:
    return (
        entry.tenant or "",
        keys.sort_key(entry.at, entry.event_id),
        entry.event,
        entry.actor,
        entry.subject,
        entry.outcome,
        json.dumps(entry.details, separators=(",", ":")) if entry.details is not None else None,
        text(entry.at + keys.RETENTION),
    )


def insert_events(db: Database, conn: sqlite3.Connection, entries: Sequence[Any]) -> None:
    """Write audit entries (``SqliteAudit.item`` values) in the caller's transaction; once an hour,
    delete a batch of expired ones too."""
    if not entries:
        return
    conn.executemany(_INSERT, [_row(e) for e in entries])
    if db.purge_due():
        purged = conn.execute(_PURGE, (text(now()), PURGE_BATCH)).rowcount
        # A full batch: more may be waiting, the next write goes on.
        db.next_purge = time.monotonic() + (0.0 if purged >= PURGE_BATCH else PURGE_INTERVAL)


def _event(tenant: str | None, row: Any) -> AuditEvent:
    sk, event, actor, subject, outcome, details = row
    at, _, event_id = sk.partition("#")
    return AuditEvent(
        tenant, time_of(at), event, actor, subject, outcome, json.loads(details) if details else None, event_id
    )


class SqliteAudit:
    def __init__(self, db: Database) -> None:
        self._db = db

    def item(
        self,
        tenant: str | None,
        event: str,
        actor: str,
        subject: str | None = None,
        outcome: str | None = None,
        details: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditEvent:
        return keys.audit_event(tenant, event, actor, subject, outcome, details, at)

    def put(self, entry: Any) -> None:
        with self._db.write() as conn:
            insert_events(self._db, conn, [entry])

    def query(
        self, tenant: str | None, start: datetime, end: datetime, event: str | None, limit: int, next_token: str | None
    ) -> tuple[list[AuditEvent], str | None]:
        """Events of ``tenant`` in [start, end), newest first (time, then event id), ``limit`` a page."""
        lower, upper = keys.bounds(start, end, next_token)
        if upper <= lower:
            return [], None
        key, alive = tenant or "", text(now())
        with self._db.read() as conn:
            if event:
                rows = conn.execute(_QUERY_EVENT, (key, event, lower, upper, alive, limit + 1)).fetchall()
            else:
                rows = conn.execute(_QUERY, (key, lower, upper, alive, limit + 1)).fetchall()
        events = [_event(tenant, r) for r in rows[:limit]]
        return events, (keys.page_token(rows[limit - 1][0]) if len(rows) > limit else None)
