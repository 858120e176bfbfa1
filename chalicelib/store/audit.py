"""The audit trail in DynamoDB: one item per security-relevant event.

Keys: pk ``{tenant}#{YYYYMMDDHH}#{shard}`` (16 random shards per tenant and hour, so a tenant
issuing thousands of certificates a second spreads its events), sk ``{ISO time}#{event id}``.
Reading a time range walks its hours newest first, queries the 16 shards of each side by side
and merges them; it stops at the hour that fills the page.

A page token is the hex of ``{"before": <sk>}``: the sort key of the last event the page returned
(or, after a long quiet stretch, the start of the oldest hour read). The next page lists the
events below it, still within the query's range.
"""

from __future__ import annotations

import heapq
import itertools
import json
import re
import secrets
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta, timezone
from typing import Any

from chalicelib.domain import AuditEvent
from chalicelib.errors import InvalidInput
from chalicelib.store import common
from chalicelib.store.models import AuditModel

SHARDS = 16
RETENTION = timedelta(days=400)
GLOBAL = "_"  # events that belong to no tenant
MAX_HOURS = 24 * 7  # hours one page reads at most: a longer quiet stretch ends the page with a token
FILTERED_PAGE = 200  # items a shard query with a type filter evaluates per call (the filter runs after)
SETTLE_SECONDS = 30  # the longest a failed page waits for its hour's other shard queries (timeouts bound them)

_HOUR = timedelta(hours=1)
_MAX_TOKEN = 256  # characters: a token is the hex of about 70 bytes
_CURSOR = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z(?:#[0-9a-f]{16})?")
_HEX = re.compile(r"(?:[0-9a-f]{2})+")


def _hour(at: datetime) -> str:
    at = at.astimezone(timezone.utc)
    return f"{at.year:04d}{at.month:02d}{at.day:02d}{at.hour:02d}"  # strftime's %Y drops the zeros of years < 1000


def _floor(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


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


# -- page tokens ---------------------------------------------------------------------------------


def _token(before: str) -> str:
    return json.dumps({"before": before}).encode().hex()


def _cursor_time(cursor: str) -> datetime:
    return datetime.fromisoformat(cursor.split("#", 1)[0].replace("Z", "+00:00"))


def _cursor(token: str) -> str:
    """The position a ``next`` token carries, or 400 naming ``next`` for anything this list did not
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
    if not isinstance(before, str) or not _CURSOR.fullmatch(before) or _token(before) != token:
        raise InvalidInput(refused, field="next")
    try:
        _cursor_time(before)
    except ValueError:  # the right shape, not a date (month 13, ...)
        raise InvalidInput(refused, field="next") from None
    return before


# -- reading -------------------------------------------------------------------------------------

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Threads for the shard queries (I/O-bound): one per shard, but no more than the connections
    the table's client keeps (``max_pool_connections``, set by ``models.bind``): a query beyond
    them would open a new TLS connection and throw it away afterwards."""
    global _executor
    with _executor_lock:
        if _executor is None:
            connections = getattr(AuditModel.Meta, "max_pool_connections", None) or 10
            _executor = ThreadPoolExecutor(max_workers=max(1, min(SHARDS, int(connections))), thread_name_prefix="audit")
        return _executor


def _client_ready() -> None:
    """Create the table's botocore client on this thread, before worker threads use it.

    pynamodb shares one client per model across threads (botocore clients are thread-safe) but
    keeps its sessions per thread: a worker that finds no client builds a session and a client of
    its own (≈ 100 ms each; sixteen at once on a cold container). This thread has the process's
    session (``common.ready``), so the client is made once, here.
    """
    _ = AuditModel._get_connection().connection.client


def _shard_events(pk: str, lower: str, upper: str, event: str | None, need: int) -> list[AuditModel]:
    """The newest ``need`` events of one shard with ``lower <= sk < upper`` (of type ``event``)."""
    exact = "#" in upper  # the cursor is an event's own key: that event may come first
    results = AuditModel.query(
        pk,
        AuditModel.sk.between(lower, upper),
        filter_condition=(AuditModel.event == event) if event else None,
        scan_index_forward=False,
        page_size=max(need + 1, FILTERED_PAGE) if event else need + exact,
    )
    return list(itertools.islice((e for e in results if e.sk < upper), need))


def _settle(batch: list[Future[list[AuditModel]]]) -> None:
    """Cancel the shard queries not started and wait for the running ones: none outlives the call."""
    for f in batch:
        f.cancel()
    wait(batch, timeout=SETTLE_SECONDS)


def _utc(at: datetime, field: str) -> datetime:
    try:
        return at.astimezone(timezone.utc) if at.tzinfo else at.replace(tzinfo=timezone.utc)
    except OverflowError:
        raise InvalidInput("must lie within years 0001-9999 in UTC", field=field) from None


def query(
    tenant: str | None, start: datetime, end: datetime, event: str | None, limit: int, next_token: str | None
) -> tuple[list[AuditEvent], str | None]:
    """Events of ``tenant`` in [start, end), newest first (by sort key: time, then event id);
    ``next`` continues where a page ended.

    Each hour's 16 shards are queried side by side on the pool, each for the n events the page
    still needs (the hour's newest n are among its shards' newest n); the hours are merged newest
    first and the walk stops at the hour that fills the page: no hour is read that the page does
    not need.
    """
    common.ready()
    start, end = _utc(start, "from"), _utc(end, "to")
    upper = common.iso(end)  # sk < upper: an event at `end` is outside, as "{end}#id" > "{end}"
    if next_token:
        upper = min(upper, _cursor(next_token))  # a token never reaches past `to`
    lower = common.iso(start)
    if upper <= lower:
        return [], None
    top = _cursor_time(upper)
    # The newest hour that can hold an event below `upper` (a bare time excludes its own instant;
    # upper > lower >= the first representable instant, so the step back cannot underflow).
    first = _floor(top if "#" in upper else top - timedelta(microseconds=1))
    last = _floor(start)
    count = (first - last) // _HOUR + 1
    hours = [first - i * _HOUR for i in range(min(count, MAX_HOURS))]

    found: list[AuditModel] = []
    batch: list[Future[list[AuditModel]]] = []
    try:
        with common.translated():
            _client_ready()
            pool = _pool()
            for hour in hours:
                key = f"{tenant or GLOBAL}#{_hour(hour)}"
                need = limit + 1 - len(found)
                batch = [pool.submit(_shard_events, f"{key}#{s:x}", lower, upper, event, need) for s in range(SHARDS)]
                shards = [f.result() for f in batch]
                merged = heapq.merge(*shards, key=lambda e: e.sk, reverse=True)
                found.extend(itertools.islice(merged, need))
                if len(found) > limit:
                    break
    finally:
        _settle(batch)  # after a failed shard query, the others of its hour
    if len(found) > limit:
        return [_to_event(e) for e in found[:limit]], _token(found[limit - 1].sk)
    events = [_to_event(e) for e in found]
    if count > len(hours):
        # A long quiet stretch: the next page goes on below the oldest hour read.
        return events, _token(common.iso(hours[-1]))
    return events, None
