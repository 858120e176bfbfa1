"""The audit trail in DynamoDB: one item per security-relevant event.

Keys: pk ``{tenant}#{shard}`` (8 shards per tenant, one chosen at random per event, so a tenant
writing thousands of events a second spreads them over 8 partition keys), sk
``{ISO time}#{event id}`` (sorts by time, then id).

A page queries each shard once for its newest events in the range (one range condition on sk,
however long the range or quiet its hours), merges them newest first, and with a type filter
continues the shard that holds the page back at most twice: at most 10 Queries a page.

A page token is the hex of ``{"before": <sk>}``: the sort key below which the next page goes on
(the page's last event, or the key down to which every shard was read), never past the range.
The sort keys, the range and the tokens are ``chalicelib.store.keys``: every adapter shares them.
"""

from __future__ import annotations

import heapq
import secrets
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.domain import AuditEvent
from chalicelib.store import common
from chalicelib.store.keys import RETENTION, bounds, page_token, sort_key
from chalicelib.store.models import AuditModel

# A partition key takes 1,000 write units a second; an event written in a transaction costs 2, a
# plain put 1: 8 shards carry 4,000-8,000 events a second per tenant before one key is hot.
SHARDS = 8
MAX_QUERIES = 10  # a page: one Query per shard, then at most two continuations of the slowest shard
FILTERED_PAGE = 200  # items a Query with a type filter evaluates at most (the filter runs after)
GLOBAL = "_"  # events that belong to no tenant
SETTLE_SECONDS = 30  # the longest a failed page waits for its other shard queries (timeouts bound them)


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
    return AuditModel(
        f"{tenant or GLOBAL}#{secrets.randbelow(SHARDS):x}",
        sort_key(at, secrets.token_hex(8)),
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
            _executor = ThreadPoolExecutor(
                max_workers=max(1, min(SHARDS, int(connections))), thread_name_prefix="audit"
            )
        return _executor


def _client_ready() -> None:
    """Create the table's botocore client on this thread, before worker threads use it.

    pynamodb shares one client per model across threads (botocore clients are thread-safe) but
    keeps its sessions per thread: a worker that finds no client builds a session and a client of
    its own (≈ 100 ms each; eight at once on a cold container). This thread has the process's
    session (``common.ready``), so the client is made once, here.
    """
    _ = AuditModel._get_connection().connection.client


@dataclass
class _Shard:
    """What a page has read of one shard: every item with ``frontier <= sk < upper`` was evaluated."""

    pk: str
    found: list[AuditModel] = field(default_factory=list)  # the matching events, newest first
    resume: dict[str, Any] | None = None  # DynamoDB's LastEvaluatedKey; None once read down to `lower`

    @property
    def frontier(self) -> str | None:
        return str(self.resume["sk"]["S"]) if self.resume else None


def _read(shard: _Shard, lower: str, upper: str, event: str | None, evaluate: int) -> None:
    """One Query: the next ``evaluate`` items of the shard below what it has read, newest first."""
    data = AuditModel._get_connection().query(
        shard.pk,
        range_key_condition=AuditModel.sk.between(lower, upper),  # inclusive: `upper` itself is dropped below
        filter_condition=(AuditModel.event == event) if event else None,
        exclusive_start_key=shard.resume,
        scan_index_forward=False,
        limit=evaluate,
    )
    shard.found.extend(e for e in map(AuditModel.from_raw_data, data.get("Items", ())) if e.sk < upper)
    shard.resume = data.get("LastEvaluatedKey")


def _settle(batch: list[Future[None]]) -> None:
    """Cancel the shard queries not started and wait for the running ones: none outlives the call."""
    for f in batch:
        f.cancel()
    wait(batch, timeout=SETTLE_SECONDS)


def query(
    tenant: str | None, start: datetime, end: datetime, event: str | None, limit: int, next_token: str | None
) -> tuple[list[AuditEvent], str | None]:
    """Events of ``tenant`` in [start, end), newest first (by sort key: time, then event id);
    ``next`` continues where a page ended. At most ``MAX_QUERIES`` Queries, whatever the range.

    The merged events are exact down to the highest frontier of the shards not read to the end
    (the slowest shard): below it, that shard may still hold events. Without a type filter one
    round fills the page (the slowest shard alone returned more than ``limit``); with one, the
    slowest shard is read on while the budget lasts, and the page may then end short with a token
    at that frontier.
    """
    common.ready()
    lower, upper = bounds(start, end, next_token)
    if upper <= lower:
        return [], None
    # One more than the page to know whether another follows, and one more after a token (a shard
    # may hold the token's own event, read and dropped): a Query then always reads below `upper`,
    # so every token it hands out makes progress.
    evaluate = limit + 1 + ("#" in upper)
    if event:
        evaluate = max(evaluate, FILTERED_PAGE)
    shards = [_Shard(f"{tenant or GLOBAL}#{s:x}") for s in range(SHARDS)]
    batch: list[Future[None]] = []
    try:
        with common.translated():
            _client_ready()
            pool = _pool()
            batch = [pool.submit(_read, s, lower, upper, event, evaluate) for s in shards]
            for f in batch:
                f.result()
            queries = len(shards)
            while True:
                floor = max((s.frontier for s in shards if s.frontier), default=None)
                merged = heapq.merge(*(s.found for s in shards), key=lambda e: e.sk, reverse=True)
                # Exact down to the lowest point every unfinished shard has been read to.
                found: list[AuditModel] = []
                for e in merged:
                    if (floor is not None and e.sk < floor) or len(found) > limit:
                        break
                    found.append(e)
                if len(found) > limit:
                    return [_to_event(e) for e in found[:limit]], page_token(found[limit - 1].sk)
                if floor is None:  # every shard read down to `lower`
                    return [_to_event(e) for e in found], None
                if queries >= MAX_QUERIES:
                    # Every event at or above `floor` is on this page: the next goes on below it.
                    return [_to_event(e) for e in found], page_token(floor)
                slowest = next(s for s in shards if s.frontier == floor)
                _read(slowest, lower, upper, event, evaluate)
                queries += 1
    finally:
        _settle(batch)  # after a failed shard query, the others
