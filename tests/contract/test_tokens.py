"""TokenStore contract: put once (or overwrite on purpose), read, revoke once, a tenant's list."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest

from chalicelib.errors import Conflict, InvalidInput
from tests.contract.conftest import Adapter, audit_events, new_tenant_id, now, pages


def token_id() -> str:
    return secrets.token_hex(8)


def test_put_then_get(adapter: Adapter, tenant_id: str) -> None:
    tid = token_id()
    before = now()
    adapter.tokens.put(tid, "hash-1", tenant_id, "ci")
    stored = adapter.tokens.get(tid)
    assert stored is not None
    assert (stored.token_id, stored.token_hash, stored.tenant_id, stored.label, stored.revoked_at) == (
        tid,
        "hash-1",
        tenant_id,
        "ci",
        None,
    )
    assert before <= stored.created_at <= now()


def test_an_operator_token_has_no_tenant(adapter: Adapter) -> None:
    tid = token_id()
    adapter.tokens.put(tid, "hash-op", None, None)
    stored = adapter.tokens.get(tid)
    assert stored is not None and (stored.tenant_id, stored.label) == (None, None)


def test_get_unknown_is_none(adapter: Adapter) -> None:
    assert adapter.tokens.get(token_id()) is None


def test_put_writes_its_audit_entries(adapter: Adapter, tenant_id: str) -> None:
    tid = token_id()
    entry = adapter.audit.item(tenant_id, "token.created", "op", subject=tid)
    adapter.tokens.put(tid, "h", tenant_id, None, audit=[entry])
    assert [(e.event, e.subject) for e in audit_events(adapter, tenant_id)] == [("token.created", tid)]


def test_put_of_an_existing_id_is_a_conflict_and_writes_nothing(adapter: Adapter, tenant_id: str) -> None:
    tid = token_id()
    adapter.tokens.put(tid, "first", tenant_id, "one")
    first = adapter.tokens.get(tid)
    with pytest.raises(Conflict):
        adapter.tokens.put(tid, "second", None, "two", audit=[adapter.audit.item(tenant_id, "token.created", "op")])
    assert adapter.tokens.get(tid) == first
    assert audit_events(adapter, tenant_id) == []


def test_overwrite_replaces_the_token(adapter: Adapter, tenant_id: str) -> None:
    tid = token_id()
    adapter.tokens.put(tid, "first", tenant_id, "one")
    adapter.tokens.revoke(tid)
    adapter.tokens.put(tid, "second", None, "two", overwrite=True)
    stored = adapter.tokens.get(tid)
    assert stored is not None
    assert (stored.token_hash, stored.tenant_id, stored.label, stored.revoked_at) == ("second", None, "two", None)


def test_revoke_sets_revoked_at_once(adapter: Adapter, tenant_id: str) -> None:
    tid = token_id()
    adapter.tokens.put(tid, "h", tenant_id, "l")
    before = now()
    revoked = adapter.tokens.revoke(tid, [adapter.audit.item(tenant_id, "token.revoked", "op", subject=tid)])
    assert revoked is not None and revoked.revoked_at is not None
    assert before <= revoked.revoked_at <= now()
    assert adapter.tokens.get(tid) == revoked
    assert (revoked.token_hash, revoked.tenant_id, revoked.label) == ("h", tenant_id, "l")
    # Again: the recorded state, and no second event.
    again = adapter.tokens.revoke(tid, [adapter.audit.item(tenant_id, "token.revoked", "op", subject=tid)])
    assert again == revoked
    assert [(e.event, e.subject) for e in audit_events(adapter, tenant_id)] == [("token.revoked", tid)]


def test_revoke_of_an_unknown_id_is_none_and_writes_nothing(adapter: Adapter, tenant_id: str) -> None:
    tid = token_id()
    assert adapter.tokens.revoke(tid, [adapter.audit.item(tenant_id, "token.revoked", "op")]) is None
    assert adapter.tokens.get(tid) is None
    assert audit_events(adapter, tenant_id) == []


def test_an_expiry_and_a_creation_time_are_kept(adapter: Adapter, tenant_id: str) -> None:
    tid = token_id()
    made = now().replace(microsecond=0)
    adapter.tokens.put(tid, "h", tenant_id, "ci", created_at=made, expires_at=made + timedelta(days=7))
    stored = adapter.tokens.get(tid)
    assert stored is not None and (stored.created_at, stored.expires_at) == (made, made + timedelta(days=7))
    assert stored.state(made + timedelta(days=7) - timedelta(seconds=1)) == "active"
    assert stored.state(made + timedelta(days=7)) == "expired"
    revoked = adapter.tokens.revoke(tid)
    assert revoked is not None and revoked.expires_at == made + timedelta(days=7) and revoked.state(made) == "revoked"


def test_list_pages_newest_first_the_tenants_own(adapter: Adapter, tenant_id: str) -> None:
    base = now().replace(microsecond=0)
    made = [token_id() for _ in range(5)]
    for i, tid in enumerate(made):
        adapter.tokens.put(tid, f"h{i}", tenant_id, f"t{i}", created_at=base + timedelta(seconds=i))
    adapter.tokens.revoke(made[0])
    adapter.tokens.put(token_id(), "other", new_tenant_id(), None)
    adapter.tokens.put(token_id(), "operator", None, None)
    got = pages(lambda token: adapter.tokens.list_page(tenant_id, limit=2, next_token=token))
    assert [len(p) for p in got] == [2, 2, 1]
    listed = [t for p in got for t in p]
    assert [t.token_id for t in listed] == list(reversed(made))
    assert listed[-1].revoked_at is not None and all(t.tenant_id == tenant_id for t in listed)
    assert adapter.tokens.list_page(new_tenant_id(), limit=10, next_token=None) == ([], None)


def test_a_token_page_of_another_tenant_is_refused(adapter: Adapter, tenant_id: str) -> None:
    for _ in range(3):
        adapter.tokens.put(token_id(), "h", tenant_id, None)
    _, token = adapter.tokens.list_page(tenant_id, limit=1, next_token=None)
    assert token is not None
    with pytest.raises(InvalidInput) as caught:
        adapter.tokens.list_page(new_tenant_id(), limit=1, next_token=token)
    assert caught.value.field == "next"
