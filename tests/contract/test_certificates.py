"""CertificateStore contract: issuance all or nothing, optimistic locking of identities, revocation
by serial, decisions, pages that resume exactly, and tenants that never see each other."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from chalicelib.domain import (
    CertificateKind,
    CertificateRecord,
    IdentityRecord,
    RequestKind,
    RequestRecord,
    RequestState,
    TenantConfig,
    new_identity,
)
from chalicelib.errors import Conflict, InvalidInput
from tests.contract.conftest import (
    Adapter,
    audit_events,
    cert_record,
    issue,
    issue_args,
    new_tenant_id,
    now,
    pages,
    request_record,
)


def ident() -> str:
    return "id-" + secrets.token_hex(8)


def stored_identity(a: Adapter, record: IdentityRecord) -> IdentityRecord:
    found = a.certificates.get_identity(record.tenant_id, record.identity)
    assert found is not None
    return found


def cert_ids(items: list[CertificateRecord]) -> list[str]:
    return [c.cert_id for c in items]


# -- reading what is not there -------------------------------------------------------------------


def test_unknown_items_are_none(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    assert store.get_certificate(tenant_id, secrets.token_hex(48)) is None
    assert store.get_certificate_by_serial(tenant_id, 12345) is None
    assert store.get_identity(tenant_id, ident()) is None
    assert store.get_request(tenant_id, secrets.token_hex(48)) is None
    assert store.list_identity_certificates(tenant_id, ident(), limit=10, next_token=None) == ([], None)
    assert store.list_pending(tenant_id, limit=10, next_token=None) == ([], None)
    assert list(store.iter_revoked(tenant_id)) == []


# -- issuance ------------------------------------------------------------------------------------


def test_store_issued_writes_certificate_serial_identity_and_request(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    name = ident()
    issued = issue(store, tenant_id, name, [adapter.audit.item(tenant_id, "certificate.issued", "client", subject="c")])
    assert store.get_certificate(tenant_id, issued.cert.cert_id) == issued.cert
    assert store.get_certificate_by_serial(tenant_id, issued.cert.serial) == issued.cert
    # The records as handed over, each one version on.
    assert store.get_identity(tenant_id, name) == replace(issued.identity, version=issued.identity.version + 1)
    assert store.get_request(tenant_id, issued.request.cr_id) == replace(
        issued.request, version=issued.request.version + 1
    )
    assert store.list_identity_certificates(tenant_id, name, limit=10, next_token=None) == ([issued.cert], None)
    assert [e.event for e in audit_events(adapter, tenant_id)] == ["certificate.issued"]


def test_a_renewal_moves_the_identity_on(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    name = ident()
    first = issue(store, tenant_id, name, at=now() - timedelta(seconds=10))
    second = issue(store, tenant_id, name)
    found = stored_identity(adapter, first.identity)
    assert (found.cert_id, found.cert_serial, found.certificates, found.version) == (
        second.cert.cert_id,
        second.cert.serial,
        2,
        2,
    )
    assert store.get_certificate(tenant_id, first.cert.cert_id) == first.cert  # the old one stays


def test_store_issued_with_a_serial_in_use_is_a_conflict_and_writes_nothing(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    name = ident()
    first = issue(store, tenant_id, name)
    identity = stored_identity(adapter, first.identity)
    request = store.get_request(tenant_id, first.request.cr_id)
    # Read fresh: only the serial stands in the way.
    second = issue_args(store, tenant_id, name, serial=first.cert.serial)
    assert second.identity.version == identity.version
    with pytest.raises(Conflict):
        store.store_issued(
            second.cert, second.identity, second.request, [adapter.audit.item(tenant_id, "certificate.issued", "c")]
        )
    assert store.get_certificate(tenant_id, second.cert.cert_id) is None
    assert store.get_certificate_by_serial(tenant_id, first.cert.serial) == first.cert
    assert store.get_identity(tenant_id, name) == identity
    assert store.get_request(tenant_id, first.request.cr_id) == request
    assert store.get_request(tenant_id, second.request.cr_id) is None
    assert store.list_identity_certificates(tenant_id, name, limit=10, next_token=None) == ([first.cert], None)
    assert audit_events(adapter, tenant_id) == []


def test_store_issued_with_a_certificate_id_in_use_is_a_conflict_and_writes_nothing(
    adapter: Adapter, tenant_id: str
) -> None:
    store = adapter.certificates
    name = ident()
    first = issue(store, tenant_id, name)
    identity = stored_identity(adapter, first.identity)
    second = issue_args(store, tenant_id, name, cert_id=first.cert.cert_id)
    with pytest.raises(Conflict):
        store.store_issued(second.cert, second.identity, second.request)
    assert store.get_certificate(tenant_id, first.cert.cert_id) == first.cert
    assert store.get_certificate_by_serial(tenant_id, second.cert.serial) is None
    assert store.get_identity(tenant_id, name) == identity
    assert store.get_request(tenant_id, second.request.cr_id) is None


def test_store_issued_with_a_stale_identity_is_a_conflict_and_writes_nothing(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    name = ident()
    read = new_identity(tenant_id, name, "contract-app")  # read before the first issue: not there yet
    issue(store, tenant_id, name)
    winner = stored_identity(adapter, read)
    late = issue_args(store, tenant_id, name, base=read)
    with pytest.raises(Conflict):
        store.store_issued(late.cert, late.identity, late.request, [adapter.audit.item(tenant_id, "x.y", "c")])
    assert store.get_identity(tenant_id, name) == winner
    assert store.get_certificate(tenant_id, late.cert.cert_id) is None
    assert store.get_certificate_by_serial(tenant_id, late.cert.serial) is None
    assert store.get_request(tenant_id, late.request.cr_id) is None
    assert audit_events(adapter, tenant_id) == []


# -- identities ----------------------------------------------------------------------------------


def full_identity(tenant_id: str) -> IdentityRecord:
    at = now() - timedelta(minutes=1)
    return replace(
        new_identity(tenant_id, ident(), "app-1"),
        approved=True,
        blocked=True,
        revoked_at=at,
        revocation_reason="keyCompromise",
        revoked_serials=frozenset({7, 2**100 + 3}),
        cert_id=secrets.token_hex(48),
        cert_serial=2**100 + 3,
        cert_der=secrets.token_bytes(70),
        cert_not_before=at,
        cert_not_after=at + timedelta(days=30),
        certificates=4,
    )


def test_save_identity_then_get(adapter: Adapter, tenant_id: str) -> None:
    record = full_identity(tenant_id)
    before = now()
    saved = adapter.certificates.save_identity(record, [adapter.audit.item(tenant_id, "identity.blocked", "op")])
    assert saved.version == 1
    assert before <= saved.modified_at <= now()
    assert replace(saved, version=0, modified_at=record.modified_at) == record
    assert adapter.certificates.get_identity(tenant_id, record.identity) == saved
    assert [e.event for e in audit_events(adapter, tenant_id)] == ["identity.blocked"]


def test_save_identity_from_a_stale_read_is_a_conflict_and_writes_nothing(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    created = store.save_identity(new_identity(tenant_id, ident(), "a"))
    read = store.get_identity(tenant_id, created.identity)
    assert read is not None
    winner = store.save_identity(replace(read, blocked=True))
    assert winner.version == read.version + 1
    with pytest.raises(Conflict):
        store.save_identity(replace(read, approved=True), [adapter.audit.item(tenant_id, "identity.x", "op")])
    assert store.get_identity(tenant_id, created.identity) == winner
    assert audit_events(adapter, tenant_id) == []
    # A new identity (version 0) where one exists is the same race.
    with pytest.raises(Conflict):
        store.save_identity(new_identity(tenant_id, created.identity, "b"))
    assert store.get_identity(tenant_id, created.identity) == winner
    # Read again, the write goes through.
    assert store.save_identity(replace(winner, approved=True)).version == winner.version + 1


# -- requests ------------------------------------------------------------------------------------


def test_save_request_then_get_and_save_again(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    record = request_record(tenant_id, ident(), state="rejected")
    before = now()
    saved = store.save_request(record, [adapter.audit.item(tenant_id, "cr.rejected", "client")])
    assert saved.version == record.version + 1 and before <= saved.modified_at <= now()
    assert replace(saved, version=record.version, modified_at=record.modified_at) == record
    assert store.get_request(tenant_id, record.cr_id) == saved
    # The same request sent again: its latest outcome replaces the record.
    again = store.save_request(replace(saved, state="pending", reason="awaiting manual approval"))
    assert again.version == saved.version + 1
    assert store.get_request(tenant_id, record.cr_id) == again
    assert [e.event for e in audit_events(adapter, tenant_id)] == ["cr.rejected"]


# -- decisions -----------------------------------------------------------------------------------


def pending(
    a: Adapter, tenant_id: str, name: str | None = None, *, state: str = "pending", at: datetime | None = None
) -> RequestRecord:
    return a.certificates.save_request(request_record(tenant_id, name or ident(), state=state, at=at))


def test_decide_changes_request_and_identity_together(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    request = pending(adapter, tenant_id)
    identity = new_identity(tenant_id, request.identity, request.application)
    decided = replace(request, state="approved", decided_by="op", reason="approved by an administrator")
    store.decide(decided, replace(identity, approved=True), [adapter.audit.item(tenant_id, "cr.approved", "op")])
    found = store.get_request(tenant_id, request.cr_id)
    assert found is not None
    assert replace(found, modified_at=decided.modified_at) == replace(decided, version=decided.version + 1)
    stored = store.get_identity(tenant_id, request.identity)
    assert stored is not None and stored.approved and stored.version == 1
    assert store.list_pending(tenant_id, limit=10, next_token=None) == ([], None)
    assert [e.event for e in audit_events(adapter, tenant_id)] == ["cr.approved"]


def test_decide_on_a_request_not_pending_is_a_conflict_and_writes_nothing(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    request = pending(adapter, tenant_id)
    identity = store.save_identity(new_identity(tenant_id, request.identity, request.application))
    rejected = replace(request, state="rejected", decided_by="op")
    store.decide(rejected, identity)
    identity = stored_identity(adapter, identity)
    on_record = store.get_request(tenant_id, request.cr_id)
    # A decision taken on the pending request read before: the request is decided already.
    with pytest.raises(Conflict):
        store.decide(
            replace(request, state="approved", decided_by="op2"),
            replace(identity, approved=True),
            [adapter.audit.item(tenant_id, "cr.approved", "op2")],
        )
    assert store.get_request(tenant_id, request.cr_id) == on_record
    assert store.get_identity(tenant_id, request.identity) == identity
    assert audit_events(adapter, tenant_id) == []


def test_decide_with_a_stale_identity_is_a_conflict_and_writes_nothing(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    request = pending(adapter, tenant_id)
    read = store.save_identity(new_identity(tenant_id, request.identity, request.application))
    winner = store.save_identity(replace(read, blocked=True))
    with pytest.raises(Conflict):
        store.decide(replace(request, state="approved"), replace(read, approved=True))
    assert store.get_request(tenant_id, request.cr_id) == request
    assert store.get_identity(tenant_id, request.identity) == winner


def test_decide_on_an_unknown_request_is_a_conflict_and_writes_nothing(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    request = request_record(tenant_id, ident())
    with pytest.raises(Conflict):
        store.decide(replace(request, state="approved"), new_identity(tenant_id, request.identity, None))
    assert store.get_request(tenant_id, request.cr_id) is None
    assert store.get_identity(tenant_id, request.identity) is None


# -- revocation ----------------------------------------------------------------------------------


def test_revoke_marks_the_certificate_and_the_identity(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    issued = issue(store, tenant_id, ident())
    identity = stored_identity(adapter, issued.identity)
    before = now()
    store.revoke(issued.cert, "keyCompromise", identity, [adapter.audit.item(tenant_id, "certificate.revoked", "op")])
    cert = store.get_certificate(tenant_id, issued.cert.cert_id)
    assert cert is not None and cert.revoked_at is not None
    assert before <= cert.revoked_at <= now() and before <= cert.modified_at
    assert replace(cert, revoked_at=None, revocation_reason=None, modified_at=issued.cert.modified_at) == replace(
        issued.cert, version=issued.cert.version + 1
    )
    assert cert.revocation_reason == "keyCompromise"
    assert store.get_certificate_by_serial(tenant_id, cert.serial) == cert
    after = stored_identity(adapter, identity)
    assert after.revoked_serials == {issued.cert.serial}
    assert after.refusal() == "certificate is revoked"
    assert after.version == identity.version + 1 and after.modified_at >= before
    assert (
        replace(after, revoked_serials=frozenset(), version=identity.version, modified_at=identity.modified_at)
        == identity
    )
    assert [e.event for e in audit_events(adapter, tenant_id)] == ["certificate.revoked"]


def test_revoke_twice_is_a_conflict_and_keeps_the_first(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    issued = issue(store, tenant_id, ident())
    store.revoke(issued.cert, "superseded", stored_identity(adapter, issued.identity))
    cert = store.get_certificate(tenant_id, issued.cert.cert_id)
    identity = stored_identity(adapter, issued.identity)
    with pytest.raises(Conflict):
        store.revoke(
            issued.cert, "keyCompromise", identity, [adapter.audit.item(tenant_id, "certificate.revoked", "op")]
        )
    assert store.get_certificate(tenant_id, issued.cert.cert_id) == cert
    assert store.get_identity(tenant_id, identity.identity) == identity
    assert audit_events(adapter, tenant_id) == []


def test_revoke_without_an_identity_marks_the_certificate(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    issued = issue(store, tenant_id, ident())
    identity = stored_identity(adapter, issued.identity)
    store.revoke(issued.cert, "cessationOfOperation", None)
    cert = store.get_certificate(tenant_id, issued.cert.cert_id)
    assert cert is not None and cert.revocation_reason == "cessationOfOperation"
    assert store.get_identity(tenant_id, identity.identity) == identity


def test_revoke_of_an_unknown_certificate_is_a_conflict(adapter: Adapter, tenant_id: str) -> None:
    cert = cert_record(tenant_id, identity=ident())
    with pytest.raises(Conflict):
        adapter.certificates.revoke(cert, "superseded", None)
    assert adapter.certificates.get_certificate(tenant_id, cert.cert_id) is None
    assert list(adapter.certificates.iter_revoked(tenant_id)) == []


def test_revoke_naming_a_missing_identity_is_a_conflict_and_writes_nothing(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    issued = issue(store, tenant_id, ident())
    ghost = new_identity(tenant_id, ident(), None)
    with pytest.raises(Conflict):
        store.revoke(issued.cert, "superseded", ghost, [adapter.audit.item(tenant_id, "certificate.revoked", "op")])
    assert store.get_certificate(tenant_id, issued.cert.cert_id) == issued.cert
    assert store.get_identity(tenant_id, ghost.identity) is None
    assert list(store.iter_revoked(tenant_id)) == []
    assert audit_events(adapter, tenant_id) == []


def test_revoke_adds_to_the_stored_identity_and_outdates_earlier_reads(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    issued = issue(store, tenant_id, ident())
    read = stored_identity(adapter, issued.identity)
    blocked = store.save_identity(replace(read, blocked=True))  # a write the revocation did not read
    store.revoke(issued.cert, "superseded", read)
    after = stored_identity(adapter, read)
    assert after.blocked and after.revoked_serials == {issued.cert.serial}
    assert after.version == blocked.version + 1
    # A write from a read taken before the revocation would put the certificate back: refused.
    with pytest.raises(Conflict):
        store.save_identity(replace(blocked, blocked=False))
    assert store.get_identity(tenant_id, read.identity) == after


def test_iter_revoked_lists_exactly_the_revoked(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    name = ident()
    issued = [issue(store, tenant_id, name, at=now() - timedelta(seconds=10 - i)) for i in range(5)]
    reasons = {0: "keyCompromise", 2: "superseded", 3: "affiliationChanged"}
    for i, reason in reasons.items():
        store.revoke(issued[i].cert, reason, stored_identity(adapter, issued[i].identity))
    expected = set()
    for i, reason in reasons.items():
        cert = store.get_certificate(tenant_id, issued[i].cert.cert_id)
        assert cert is not None and cert.revoked_at is not None
        expected.add((cert.serial, cert.revoked_at, reason, cert.not_after, cert.ca_id))
    listed = list(store.iter_revoked(tenant_id))
    assert len(listed) == 3 and set(listed) == expected
    assert sorted(store.iter_revoked(tenant_id, page_size=2)) == sorted(listed)
    assert stored_identity(adapter, issued[0].identity).revoked_serials == {issued[i].cert.serial for i in reasons}


# -- pages ---------------------------------------------------------------------------------------


def test_identity_certificates_come_newest_first_in_pages_that_resume_exactly(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    name = ident()
    start = now() - timedelta(minutes=1)
    issued = [issue(store, tenant_id, name, at=start + timedelta(seconds=i)).cert for i in range(7)]
    issue(store, tenant_id, ident())  # another identity's
    newest_first = list(reversed(issued))
    got = pages(lambda t: store.list_identity_certificates(tenant_id, name, limit=3, next_token=t))
    assert [len(p) for p in got] == [3, 3, 1]
    assert [c for p in got for c in p] == newest_first
    assert store.list_identity_certificates(tenant_id, name, limit=7, next_token=None)[0] == newest_first


def test_an_identity_certificate_issued_between_pages_neither_repeats_nor_skips_one(
    adapter: Adapter, tenant_id: str
) -> None:
    store = adapter.certificates
    name = ident()
    start = now() - timedelta(minutes=1)
    issued = [issue(store, tenant_id, name, at=start + timedelta(seconds=i)).cert for i in range(5)]
    first, token = store.list_identity_certificates(tenant_id, name, limit=2, next_token=None)
    newer = issue(store, tenant_id, name).cert  # newest: above the page read
    rest = pages(lambda t: store.list_identity_certificates(tenant_id, name, limit=2, next_token=t or token))
    seen = cert_ids(first) + [c.cert_id for p in rest for c in p]
    assert seen == cert_ids(list(reversed(issued)))
    assert newer.cert_id not in seen


def test_pending_requests_come_oldest_first_in_pages_that_resume_exactly(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    start = now() - timedelta(minutes=1)
    waiting = [pending(adapter, tenant_id, at=start + timedelta(seconds=i)) for i in range(7)]
    pending(adapter, tenant_id, state="rejected", at=start)  # not pending
    issue(store, tenant_id, ident())  # its request is issued, not pending
    got = pages(lambda t: store.list_pending(tenant_id, limit=3, next_token=t))
    assert [len(p) for p in got] == [3, 3, 1]
    assert [r for p in got for r in p] == waiting


def test_a_request_decided_between_pages_skips_none_of_the_others(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    start = now() - timedelta(minutes=1)
    waiting = [pending(adapter, tenant_id, at=start + timedelta(seconds=i)) for i in range(6)]
    first, token = store.list_pending(tenant_id, limit=2, next_token=None)
    assert first == waiting[:2]
    store.decide(replace(waiting[0], state="rejected"), new_identity(tenant_id, waiting[0].identity, None))
    later = pending(adapter, tenant_id)  # a new one, at the end
    rest = pages(lambda t: store.list_pending(tenant_id, limit=2, next_token=t or token))
    assert [r for p in rest for r in p] == waiting[2:] + [later]


@pytest.mark.parametrize("token", ["0", "x", "not a token", "eyJhIjoxfQ", "A" * 40])
def test_a_token_the_list_did_not_hand_out_is_invalid_input(adapter: Adapter, tenant_id: str, token: str) -> None:
    store = adapter.certificates
    with pytest.raises(InvalidInput) as exc:
        store.list_pending(tenant_id, limit=2, next_token=token)
    assert exc.value.field == "next"
    with pytest.raises(InvalidInput) as exc:
        store.list_identity_certificates(tenant_id, ident(), limit=2, next_token=token)
    assert exc.value.field == "next"


def test_a_token_of_another_list_is_invalid_input(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    name = ident()
    for i in range(3):
        issue(store, tenant_id, name, at=now() - timedelta(seconds=10 - i))
        pending(adapter, tenant_id, at=now() - timedelta(seconds=10 - i))
    _, cert_token = store.list_identity_certificates(tenant_id, name, limit=1, next_token=None)
    _, pending_token = store.list_pending(tenant_id, limit=1, next_token=None)
    assert cert_token and pending_token
    other = tenant_id + "-b"
    for call in (
        lambda: store.list_identity_certificates(other, name, limit=1, next_token=cert_token),  # another tenant's
        lambda: store.list_identity_certificates(tenant_id, ident(), limit=1, next_token=cert_token),  # identity's
        lambda: store.list_pending(other, limit=1, next_token=pending_token),
        lambda: store.list_pending(tenant_id, limit=1, next_token=cert_token),  # another kind of list
        lambda: store.list_identity_certificates(tenant_id, name, limit=1, next_token=pending_token),
    ):
        with pytest.raises(InvalidInput):
            call()


# -- tenants apart -------------------------------------------------------------------------------


def test_nothing_of_one_tenant_is_visible_through_another(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    name = ident()
    issued = issue(store, tenant_id, name)
    store.revoke(issued.cert, "superseded", stored_identity(adapter, issued.identity))
    waiting = pending(adapter, tenant_id, name)
    ca = cert_record(tenant_id, kind="ca")
    tenant = adapter.tenants.create(tenant_id, TenantConfig(), "s", "fp", False)
    adapter.tenants.add_ca(tenant, ca)
    adapter.audit.put(adapter.audit.item(tenant_id, "cr.received", "client"))
    for other in (tenant_id + "-b", new_tenant_id(), tenant_id[:-1]):
        assert store.get_certificate(other, issued.cert.cert_id) is None
        assert store.get_certificate(other, ca.cert_id) is None
        assert store.get_certificate_by_serial(other, issued.cert.serial) is None
        assert store.get_identity(other, name) is None
        assert store.get_request(other, issued.request.cr_id) is None
        assert store.get_request(other, waiting.cr_id) is None
        assert store.list_identity_certificates(other, name, limit=10, next_token=None) == ([], None)
        assert store.list_pending(other, limit=10, next_token=None) == ([], None)
        assert list(store.iter_revoked(other)) == []
        assert adapter.tenants.get(other) is None
        assert audit_events(adapter, other) == []
    # ... and all of it is there for its own.
    assert store.list_pending(tenant_id, limit=10, next_token=None) == ([waiting], None)
    assert len(list(store.iter_revoked(tenant_id))) == 1


# -- certificates by issuing CA ------------------------------------------------------------------


def _issue_under(a: Adapter, tenant_id: str, ca_id: str, *, at: datetime | None = None) -> CertificateRecord:
    args = issue_args(a.certificates, tenant_id, ident(), at=at)
    cert = replace(args.cert, ca_id=ca_id)
    a.certificates.store_issued(cert, args.identity, args.request)
    return cert


def test_count_by_ca_counts_unexpired_unrevoked_certificates_of_that_ca(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    ca, other_ca = secrets.token_hex(48), secrets.token_hex(48)
    assert store.count_by_ca(tenant_id, ca, now()) == 0
    valid = [_issue_under(adapter, tenant_id, ca) for _ in range(3)]
    _issue_under(adapter, tenant_id, ca, at=now() - timedelta(days=400))  # expired 35 days ago
    _issue_under(adapter, tenant_id, other_ca)
    _issue_under(adapter, tenant_id + "-b", ca)  # another tenant's, under a CA of the same id
    revoked = valid.pop()
    identity = store.get_identity(tenant_id, revoked.identity or "")
    store.revoke(revoked, "superseded", identity)
    assert store.count_by_ca(tenant_id, ca, now()) == 2
    assert store.count_by_ca(tenant_id, other_ca, now()) == 1
    assert store.count_by_ca(tenant_id + "-b", ca, now()) == 1
    # "unexpired" at the time asked: a year on, none is
    assert store.count_by_ca(tenant_id, ca, max(c.not_after for c in valid)) == 0
    assert store.count_by_ca(tenant_id, ca, min(c.not_after for c in valid) - timedelta(seconds=1)) == 2
    assert store.count_by_ca(new_tenant_id(), ca, now()) == 0


# -- PKCS#10 CSRs beside SeaCat CRs --------------------------------------------------------------


def test_a_csr_request_and_its_x509_certificate_keep_their_kind_and_profile(adapter: Adapter, tenant_id: str) -> None:
    store = adapter.certificates
    name = ident()
    pending_csr = replace(request_record(tenant_id, name), kind=RequestKind.CSR, profile="routers", attributes=())
    saved = store.save_request(pending_csr)
    assert store.get_request(tenant_id, saved.cr_id) == saved
    assert (saved.kind, saved.profile) == (RequestKind.CSR, "routers")
    listed, _ = store.list_pending(tenant_id, limit=10, next_token=None)
    assert [(r.cr_id, r.kind, r.profile) for r in listed] == [(saved.cr_id, RequestKind.CSR, "routers")]
    # issued under the CSR's identity: a certificate of kind x509, the request issued, both read back
    issued = issue_args(store, tenant_id, name)
    cert = replace(issued.cert, kind=CertificateKind.X509, cr_id=saved.cr_id)
    request = replace(saved, state=RequestState.ISSUED, cert_id=cert.cert_id, decided_by="tok")
    store.store_issued(cert, replace(issued.identity, cert_id=cert.cert_id), request)
    assert store.get_certificate(tenant_id, cert.cert_id) == cert
    assert store.get_certificate_by_serial(tenant_id, cert.serial) == cert
    assert store.list_identity_certificates(tenant_id, name, limit=10, next_token=None) == ([cert], None)
    found = store.get_request(tenant_id, saved.cr_id)
    assert found is not None and (found.kind, found.profile, found.state) == (RequestKind.CSR, "routers", "issued")
    assert store.list_pending(tenant_id, limit=10, next_token=None) == ([], None)
    # a SeaCat CR stays one
    cr = store.save_request(request_record(tenant_id, ident()))
    assert store.get_request(tenant_id, cr.cr_id) == cr and cr.kind == RequestKind.CR and cr.profile is None
