"""AuditStore contract: entries written are read back newest first (by time, then event id), within
[from, to) (docs/operations.md, "Audit trail and logs": ``from`` included, ``to`` excluded), by type,
in pages whose ``next`` lists every event of the range once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from chalicelib.domain import AuditEvent
from chalicelib.errors import InvalidInput
from tests.contract.conftest import Adapter, audit_events, pages

T0 = datetime(2031, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)


def write(a: Adapter, tenant: str | None, event: str, at: datetime, subject: str | None = None) -> None:
    a.audit.put(a.audit.item(tenant, event, "op", subject=subject, at=at))


def newest_first(events: list[AuditEvent]) -> bool:
    keys = [(e.at, e.event_id) for e in events]
    return keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys)


def test_item_then_put_then_query(adapter: Adapter, tenant_id: str) -> None:
    details = {"identity": "id-1", "serial": "1f", "changed": {"lifetimeDays": 90}, "n": 3, "ok": True}
    adapter.audit.put(adapter.audit.item(tenant_id, "certificate.issued", "client", "cert-1", "issued", details, at=T0))
    [event] = audit_events(adapter, tenant_id, start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=1))
    assert (event.tenant, event.at, event.event, event.actor, event.subject, event.outcome, event.details) == (
        tenant_id,
        T0,
        "certificate.issued",
        "client",
        "cert-1",
        "issued",
        details,
    )
    assert event.event_id


def test_an_entry_at_now_by_default(adapter: Adapter, tenant_id: str) -> None:
    before = datetime.now(UTC)
    adapter.audit.put(adapter.audit.item(tenant_id, "tenant.created", "op"))
    [event] = audit_events(adapter, tenant_id)
    assert before <= event.at <= datetime.now(UTC)
    assert (event.subject, event.outcome, event.details) == (None, None, None)


def test_the_range_includes_from_and_excludes_to(adapter: Adapter, tenant_id: str) -> None:
    us = timedelta(microseconds=1)
    end = T0 + timedelta(seconds=10)
    mid = T0 + timedelta(seconds=5)
    instants = [(T0 - us, "before"), (T0, "from"), (mid, "inside"), (end - us, "last"), (end, "to")]
    for at, name in instants:
        write(adapter, tenant_id, "cr.received", at, subject=name)
    found = audit_events(adapter, tenant_id, start=T0, end=end)
    assert [e.subject for e in found] == ["last", "inside", "from"]
    # Bounds with another offset mean the same instants.
    plus2 = timezone(timedelta(hours=2))
    again = audit_events(adapter, tenant_id, start=T0.astimezone(plus2), end=end.astimezone(plus2))
    assert again == found
    assert audit_events(adapter, tenant_id, start=T0, end=T0) == []


def test_events_come_newest_first_by_time_then_id(adapter: Adapter, tenant_id: str) -> None:
    for i in range(4):
        write(adapter, tenant_id, "cr.received", T0 + timedelta(seconds=i % 2))  # two at each of two instants
    found = audit_events(adapter, tenant_id, start=T0, end=T0 + timedelta(minutes=1))
    assert len(found) == 4 and newest_first(found)


def test_the_type_filter(adapter: Adapter, tenant_id: str) -> None:
    for i, event in enumerate(["cr.received", "certificate.issued", "cr.received", "token.created"]):
        write(adapter, tenant_id, event, T0 + timedelta(seconds=i), subject=str(i))
    found = audit_events(adapter, tenant_id, event="cr.received", start=T0, end=T0 + timedelta(minutes=1))
    assert [(e.event, e.subject) for e in found] == [("cr.received", "2"), ("cr.received", "0")]
    assert audit_events(adapter, tenant_id, event="ca.created", start=T0, end=T0 + timedelta(minutes=1)) == []


def test_pages_resume_exactly(adapter: Adapter, tenant_id: str) -> None:
    for i in range(25):
        write(adapter, tenant_id, "cr.received", T0 + timedelta(seconds=i // 2), subject=str(i))  # ties too
    end = T0 + timedelta(minutes=1)
    got = pages(lambda t: adapter.audit.query(tenant_id, T0, end, None, 7, t))
    assert [len(p) for p in got] == [7, 7, 7, 4]
    listed = [e for p in got for e in p]
    assert len({e.event_id for e in listed}) == 25 and newest_first(listed)
    assert sorted(int(e.subject or "") for e in listed) == list(range(25))
    assert listed == audit_events(adapter, tenant_id, start=T0, end=end)


def test_pages_with_a_type_filter_resume_exactly(adapter: Adapter, tenant_id: str) -> None:
    for i in range(25):
        write(adapter, tenant_id, "cr.received" if i % 3 else "certificate.issued", T0 + timedelta(seconds=i), str(i))
    end = T0 + timedelta(minutes=1)
    got = pages(lambda t: adapter.audit.query(tenant_id, T0, end, "cr.received", 4, t))
    assert all(len(p) <= 4 for p in got)
    listed = [e for p in got for e in p]
    assert [e.subject for e in listed] == [str(i) for i in reversed(range(25)) if i % 3]


def test_an_event_written_between_pages_neither_repeats_nor_skips_one(adapter: Adapter, tenant_id: str) -> None:
    for i in range(6):
        write(adapter, tenant_id, "cr.received", T0 + timedelta(seconds=i), str(i))
    end = T0 + timedelta(minutes=1)
    first, token = adapter.audit.query(tenant_id, T0, end, None, 2, None)
    write(adapter, tenant_id, "cr.received", T0 + timedelta(seconds=30), "new")  # newer than the page read
    rest = pages(lambda t: adapter.audit.query(tenant_id, T0, end, None, 2, t or token))
    assert [e.subject for e in first + [e for p in rest for e in p]] == ["5", "4", "3", "2", "1", "0"]


@pytest.mark.parametrize("token", ["0", "zz", "7b7d", "not a token"])
def test_a_token_the_list_did_not_hand_out_is_invalid_input(adapter: Adapter, tenant_id: str, token: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        adapter.audit.query(tenant_id, T0, T0 + timedelta(minutes=1), None, 5, token)
    assert exc.value.field == "next"


def test_tenants_and_the_global_trail_are_apart(adapter: Adapter, tenant_id: str) -> None:
    other = tenant_id + "-b"
    write(adapter, tenant_id, "cr.received", T0, "mine")
    write(adapter, other, "cr.received", T0, "theirs")
    marker = f"global-{tenant_id}"
    write(adapter, None, "token.created", T0, marker)
    end = T0 + timedelta(seconds=1)
    assert [e.subject for e in audit_events(adapter, tenant_id, start=T0, end=end)] == ["mine"]
    assert [e.subject for e in audit_events(adapter, other, start=T0, end=end)] == ["theirs"]
    globals_ = [e for e in audit_events(adapter, None, start=T0, end=end) if e.subject == marker]
    assert [(e.tenant, e.event) for e in globals_] == [(None, "token.created")]
    assert all(e.tenant is None for e in audit_events(adapter, None, start=T0, end=end))
