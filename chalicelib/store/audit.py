"""The audit trail in DynamoDB: one item per security-relevant event.

Keys: pk ``{tenant}#{YYYYMMDDHH}#{shard}`` (16 random shards per tenant and hour, so a tenant
issuing thousands of certificates a second spreads its events), sk ``{ISO time}#{event id}``.
Reading a time range walks its hours newest first, queries the 16 shards of each and merges.
"""

from __future__ import annotations

import heapq
import itertools
import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

from chalicelib.domain import AuditEvent
from chalicelib.errors import InvalidInput
from chalicelib.store import common
from chalicelib.store.models import AuditModel

SHARDS = 16
RETENTION = timedelta(days=400)
GLOBAL = "_"  # events that belong to no tenant


def _hour(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y%m%d%H")


def item(
    tenant: str | None,
    event: str,
    actor: str,
    subject: str | None = None,
    outcome: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditModel:
    common.ready()
    at = at or common.now()
    event_id = secrets.token_hex(8)
    return AuditModel(
        f"{tenant or GLOBAL}#{_hour(at)}#{secrets.randbelow(SHARDS):x}",
        f"{common.iso(at)}#{event_id}",
        tenant_id=tenant,
        event=event,
        actor=actor,
        subject=subject,
        outcome=outcome,
        details=details,
        expires_at=at + RETENTION,
    )


def put(entry: AuditModel) -> None:
    common.ready()
    with common.translated():
        entry.save()


def _to_event(entry: AuditModel) -> AuditEvent:
    at_text, _, event_id = entry.sk.partition("#")
    return AuditEvent(
        tenant=entry.tenant_id,
        at=datetime.fromisoformat(at_text.replace("Z", "+00:00")),
        event=entry.event,
        actor=entry.actor,
        subject=entry.subject,
        outcome=entry.outcome,
        details=entry.details,
        event_id=event_id,
    )


_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """The 16 shard queries of an hour run side by side (I/O-bound; botocore clients are thread-safe)."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=SHARDS, thread_name_prefix="audit")
    return _executor


def query(
    tenant: str | None, start: datetime, end: datetime, event: str | None, limit: int, next_token: str | None
) -> tuple[list[AuditEvent], str | None]:
    """Events of ``tenant`` in [start, end), newest first; ``next`` continues where a page ended."""
    common.ready()
    before = common.iso(end)
    if next_token:
        try:
            state = json.loads(bytes.fromhex(next_token))
            before = str(state["before"])
            datetime.fromisoformat(before.split("#", 1)[0].replace("Z", "+00:00"))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise InvalidInput("not a page token of this list", field="next") from None
    after = common.iso(start)
    hour = datetime.fromisoformat(before.split("#", 1)[0].replace("Z", "+00:00")).replace(minute=0, second=0, microsecond=0)
    found: list[AuditEvent] = []
    hours_read = 0
    with common.translated():
        while hour >= start.replace(minute=0, second=0, microsecond=0) and hours_read < 24 * 7:
            hours_read += 1
            condition = AuditModel.sk.between(after, before)
            key = f"{tenant or GLOBAL}#{_hour(hour)}"

            def newest(shard: int, key: str = key, condition: Any = condition) -> list[AuditModel]:
                # Each shard's newest limit+1 events are enough: the page's events are among them.
                results = AuditModel.query(
                    f"{key}#{shard:x}",
                    condition,
                    filter_condition=(AuditModel.event == event) if event else None,
                    scan_index_forward=False,
                    page_size=limit + 1,
                )
                return list(itertools.islice(results, limit + 1))

            shards = list(_pool().map(newest, range(SHARDS)))
            for entry in heapq.merge(*shards, key=lambda e: e.sk, reverse=True):
                if next_token and entry.sk >= before:
                    continue
                found.append(_to_event(entry))
                if len(found) > limit:
                    break
            if len(found) > limit:
                break
            hour -= timedelta(hours=1)
    if len(found) > limit:
        last = found[limit - 1]
        token = json.dumps({"before": f"{common.iso(last.at)}#{last.event_id}"}).encode().hex()
        return found[:limit], token
    if hours_read >= 24 * 7 and hour >= start:
        # A long quiet range: hand back a token so the caller goes on from here.
        return found, json.dumps({"before": common.iso(hour + timedelta(hours=1))}).encode().hex()
    return found, None
