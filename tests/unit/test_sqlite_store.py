"""What the SQLite adapter promises beyond the storage contract (tests/contract runs that on it too):
versioned migrations, the connection settings, a busy database as a 503, writers of several
processes serializing (each success stored, one winner per contested write), a crash inside a
transaction leaving nothing half-written, and no AWS library imported."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain import CaCert, CaState, CertificateRecord, RequestKind, TenantConfig, new_identity
from chalicelib.errors import Conflict, Unavailable
from chalicelib.store.sqlite import SCHEMA_VERSION, SchemaError, SqliteBackend, StoreClosed, schema
from chalicelib.store.sqlite.db import text
from tests.conftest import ROOT
from tests.contract.conftest import audit_events, cert_record, issue, issue_args, now

TENANT = "sq-tenant"
SPAWN = multiprocessing.get_context("spawn")  # a child never inherits a parent's SQLite state
WAIT = 60  # seconds: the bound on any child (a hung child fails the test instead of hanging it)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "seacat.db"


@pytest.fixture
def backend(path: Path) -> Iterator[SqliteBackend]:
    with SqliteBackend(path) as b:
        yield b


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def pragma(conn: sqlite3.Connection, name: str) -> Any:
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


# -- migrations ----------------------------------------------------------------------------------


def test_a_fresh_database_gets_the_latest_schema(backend: SqliteBackend, path: Path) -> None:
    conn = raw(path)
    assert pragma(conn, "user_version") == SCHEMA_VERSION == len(schema.MIGRATIONS)
    assert pragma(conn, "application_id") == schema.APPLICATION_ID
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    assert {"tenants", "certificates", "serials", "tenant_cas", "identities", "requests", "tokens", "audit"} <= tables
    assert path.stat().st_mode & 0o777 == 0o600


def test_reopening_changes_nothing_and_takes_no_write_lock(path: Path) -> None:
    with SqliteBackend(path) as b:
        issued = issue(b.certificates, TENANT, "id-1")
    holder = raw(path)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock: a migration would wait for it
    try:
        with SqliteBackend(path, busy_timeout=0.05) as b:
            assert b.certificates.get_certificate(TENANT, issued.cert.cert_id) == issued.cert
        assert pragma(raw(path), "user_version") == SCHEMA_VERSION
    finally:
        holder.execute("ROLLBACK")


def test_a_database_of_a_newer_schema_is_refused_untouched(path: Path) -> None:
    SqliteBackend(path).close()
    conn = raw(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaError, match=f"schema version {SCHEMA_VERSION + 1}.*up to {SCHEMA_VERSION}"):
        SqliteBackend(path)
    assert pragma(conn, "user_version") == SCHEMA_VERSION + 1


def test_another_applications_database_is_refused(path: Path) -> None:
    conn = raw(path)
    conn.execute("CREATE TABLE notes (x)")
    conn.execute("PRAGMA user_version = 1")
    with pytest.raises(SchemaError, match="not a SeaCat PKI database"):
        SqliteBackend(path)


def test_the_missing_migrations_are_applied_in_one_transaction(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SqliteBackend(path) as b:
        issue(b.certificates, TENANT, "id-1")
    broken = ("ALTER TABLE tokens ADD COLUMN scope TEXT", "CREATE TABLE tokens (x)")  # the second fails
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, broken))
    monkeypatch.setattr(schema, "VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(sqlite3.OperationalError):
        SqliteBackend(path)
    conn = raw(path)
    assert pragma(conn, "user_version") == SCHEMA_VERSION
    assert "scope" not in {r[1] for r in conn.execute("PRAGMA table_info(tokens)")}  # rolled back whole

    fixed = ("ALTER TABLE tokens ADD COLUMN scope TEXT",)
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS[:-1], fixed))
    with SqliteBackend(path) as b:
        assert b.certificates.get_identity(TENANT, "id-1") is not None
    assert pragma(conn, "user_version") == SCHEMA_VERSION + 1
    assert "scope" in {r[1] for r in conn.execute("PRAGMA table_info(tokens)")}


def _at_version(path: Path, version: int) -> sqlite3.Connection:
    """A new database with the schema of ``version`` (its first migrations only), in an open write
    transaction: the caller adds the rows that version wrote, then commits."""
    conn = raw(path)
    conn.execute("BEGIN IMMEDIATE")
    for migration in schema.MIGRATIONS[:version]:
        for statement in migration:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    return conn


def _version_1(path: Path) -> tuple[CertificateRecord, list[CertificateRecord]]:
    """A database as schema version 1 wrote it (before the CA lifecycle): a tenant, its CA certificate,
    and three client certificates that CA issued (one expired, one revoked). Returns the CA's record
    and the clients'."""
    conn = _at_version(path, 1)
    at = now() - timedelta(days=1)
    ca = cert_record(TENANT, kind="ca", at=at)
    clients = [
        cert_record(TENANT, identity="id-1", at=at),
        cert_record(TENANT, identity="id-2", at=at - timedelta(days=400)),  # expired
        replace(cert_record(TENANT, identity="id-3", at=at), revoked_at=at, revocation_reason="superseded"),
    ]
    clients = [replace(c, ca_id=ca.cert_id) for c in clients]
    conn.execute(
        "INSERT INTO tenants VALUES (?, ?, 'first-secret', 'fp', 0, ?, ?, ?, 2)",
        (TENANT, json.dumps(TenantConfig().to_json()), ca.cert_id, text(at), text(at)),
    )
    for c in (ca, *clients):
        conn.execute(
            """INSERT INTO certificates (tenant_id, cert_id, kind, serial, der, not_before, not_after, created_at,
            modified_at, version, identity, ca_id, cr_id, revoked_at, revocation_reason)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                c.tenant_id,
                c.cert_id,
                c.kind,
                f"{c.serial:x}",
                c.der,
                text(c.not_before),
                text(c.not_after),
                text(c.created_at),
                text(c.modified_at),
                c.version,
                c.identity,
                c.ca_id,
                c.cr_id,
                text(c.revoked_at) if c.revoked_at else None,
                c.revocation_reason,
            ),
        )
    conn.execute("INSERT INTO tenant_cas VALUES (?, 0, ?)", (TENANT, ca.cert_id))
    conn.execute("COMMIT")
    conn.close()
    return ca, clients


def test_a_database_of_version_1_migrates_to_2_and_reads_as_before(path: Path) -> None:
    ca, clients = _version_1(path)
    with SqliteBackend(path) as b:
        conn = raw(path)
        assert pragma(conn, "user_version") == SCHEMA_VERSION >= 2
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'index'")}
        assert "certificates_by_ca" in indexes
        # Entries of version 1: the tenant's first key, trusted (active: the tenant's active_ca names it).
        tenant = b.tenants.get(TENANT)
        assert tenant is not None and tenant.version == 2 and tenant.active_ca == ca.cert_id
        assert tenant.cas == (CaCert(ca.cert_id, ca.der, ca.created_at, None, CaState.TRUSTED, None),)
        assert tenant.key_of(tenant.cas[0]) == "first-secret" and tenant.state_of(tenant.cas[0]) == CaState.ACTIVE
        assert b.certificates.get_certificate(TENANT, ca.cert_id) == ca  # final_crl None
        assert [b.certificates.get_certificate(TENANT, c.cert_id) for c in clients] == clients
        assert b.certificates.count_by_ca(TENANT, ca.cert_id, now()) == 1  # neither the expired nor the revoked

        # The lifecycle on the migrated rows: a rotation, then the old CA retired with its final CRL.
        new = cert_record(TENANT, kind="ca")
        b.tenants.add_ca(tenant, new, key_secret="rotated-secret")
        rotated = b.tenants.get(TENANT)
        assert rotated is not None and rotated.active_ca == new.cert_id
        retired = b.tenants.set_ca_states(rotated, {ca.cert_id: CaState.RETIRED}, final_crls={ca.cert_id: b"crl"})
        assert [(c.cert_id, c.key_secret, c.state) for c in retired.cas] == [
            (ca.cert_id, None, CaState.RETIRED),
            (new.cert_id, "rotated-secret", CaState.TRUSTED),
        ]
        stored = b.certificates.get_certificate(TENANT, ca.cert_id)
        assert stored is not None and stored.final_crl == b"crl"
    with SqliteBackend(path) as b:  # reopened: nothing more to migrate, the same rows
        assert b.tenants.get(TENANT) == retired


def test_a_database_of_version_2_migrates_to_3_its_requests_reading_as_seacat_crs(path: Path) -> None:
    conn = _at_version(path, 2)
    at = now()
    conn.execute(
        """INSERT INTO requests (tenant_id, cr_id, identity, application, der, state, created_at, modified_at,
        version, attributes) VALUES (?, 'cr-1', 'id-1', 'app', x'00', 'pending', ?, ?, 1, '[]')""",
        (TENANT, text(at), text(at)),
    )
    conn.execute("COMMIT")
    conn.close()
    with SqliteBackend(path) as b:
        assert pragma(raw(path), "user_version") == SCHEMA_VERSION >= 3
        old = b.certificates.get_request(TENANT, "cr-1")
        assert old is not None and old.kind == RequestKind.CR and old.profile is None and old.application == "app"
        csr = b.certificates.save_request(replace(old, cr_id="csr-1", kind=RequestKind.CSR, profile="routers"))
        assert b.certificates.get_request(TENANT, "csr-1") == csr
        with pytest.raises(sqlite3.IntegrityError):  # the column takes the two kinds only
            raw(path).execute("UPDATE requests SET kind = 'other' WHERE cr_id = 'cr-1'")


def test_a_database_of_version_4_migrates_to_5_its_tokens_working_and_listed_with_no_expiry(path: Path) -> None:
    conn = _at_version(path, 4)
    conn.execute(
        "INSERT INTO tokens (token_id, token_hash, tenant_id, label, created_at) VALUES ('00000000000000aa', 'h', ?, 'old', ?)",
        (TENANT, text(now())),
    )
    conn.execute("COMMIT")
    conn.close()
    with SqliteBackend(path) as b:
        assert pragma(raw(path), "user_version") == SCHEMA_VERSION >= 5
        old = b.tokens.get("00000000000000aa")
        assert old is not None and old.expires_at is None and old.label == "old" and old.state(now()) == "active"
        assert b.tokens.list_page(TENANT, limit=10, next_token=None) == ([old], None)


# -- settings, threads, closing ------------------------------------------------------------------


def test_every_connection_has_the_settings(backend: SqliteBackend) -> None:
    def settings() -> tuple[Any, ...]:
        conn = backend.db.connection()
        return tuple(pragma(conn, p) for p in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout"))

    other: list[tuple[Any, ...]] = []
    worker = threading.Thread(target=lambda: other.append(settings()))
    worker.start()
    worker.join()
    assert settings() == other[0] == ("wal", 2, 1, 5000)  # synchronous 2: FULL


def test_each_thread_has_its_connection_and_close_ends_them(backend: SqliteBackend) -> None:
    ready, go, seen = threading.Event(), threading.Event(), []

    def worker() -> None:
        seen.append(backend.db.connection())
        backend.tenants.get(TENANT)
        ready.set()
        go.wait(WAIT)
        try:
            backend.tenants.get(TENANT)
        except StoreClosed as exc:
            seen.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    assert ready.wait(WAIT)
    assert seen[0] is not backend.db.connection()
    backend.close()
    go.set()
    thread.join(WAIT)
    assert isinstance(seen[1], StoreClosed)
    with pytest.raises(StoreClosed):
        backend.tenants.get(TENANT)


def test_hot_reads_are_remembered_until_anything_is_committed_anywhere(backend: SqliteBackend, path: Path) -> None:
    """The tenant and identity reads are remembered per thread, and forgotten at any commit: this
    backend's, another backend's (another worker process) or another program's."""
    tenant = backend.tenants.create(TENANT, TenantConfig(), "s", "fp", False)
    identity = backend.certificates.save_identity(new_identity(TENANT, "ID1", "app"))
    first = backend.tenants.get(TENANT)
    assert first is not None and backend.tenants.get(TENANT) is first  # remembered: no commit since
    assert backend.certificates.get_identity(TENANT, "ID1") is backend.certificates.get_identity(TENANT, "ID1")

    with SqliteBackend(path) as other:  # another worker
        other.tenants.update_config(tenant, replace(TenantConfig(), lifetime_days=7))
        stored = other.certificates.get_identity(TENANT, "ID1")
        assert stored is not None
        other.certificates.save_identity(replace(stored, blocked=True))
    seen = backend.tenants.get(TENANT)
    assert seen is not None and seen.config.lifetime_days == 7
    blocked = backend.certificates.get_identity(TENANT, "ID1")
    assert blocked is not None and blocked.blocked

    backend.certificates.save_identity(replace(blocked, blocked=False))  # this backend's own commit
    unblocked = backend.certificates.get_identity(TENANT, "ID1")
    assert unblocked is not None and not unblocked.blocked and unblocked.version == identity.version + 2

    with raw(path) as conn:  # another program
        conn.execute("UPDATE identities SET blocked = 1 WHERE identity = 'ID1'")
    again = backend.certificates.get_identity(TENANT, "ID1")
    assert again is not None and again.blocked
    # The tenant's rows did not change with those commits: read again, its parsed record is reused.
    assert backend.tenants.get(TENANT) is seen
    with raw(path) as conn:
        conn.execute("UPDATE tenants SET key_fingerprint = 'fp2' WHERE tenant_id = ?", (TENANT,))
    moved = backend.tenants.get(TENANT)
    assert moved is not None and moved.key_fingerprint == "fp2" and moved.config.lifetime_days == 7

    done: list[object] = []
    thread = threading.Thread(target=lambda: done.append(backend.certificates.get_identity(TENANT, "ID1")))
    thread.start()
    thread.join(WAIT)
    assert done[0] == again and done[0] is not again  # each thread remembers its own


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_backend_is_not_used_across_a_fork(backend: SqliteBackend) -> None:
    backend.tenants.get(TENANT)
    pid = os.fork()
    if pid == 0:  # the child: the parent's backend refuses
        try:
            backend.tenants.get(TENANT)
        except StoreClosed:
            os._exit(0)
        os._exit(1)
    assert os.waitpid(pid, 0)[1] == 0
    assert backend.tenants.get(TENANT) is None  # the parent's goes on


# -- a busy database -----------------------------------------------------------------------------


def test_a_write_lock_held_past_the_timeout_is_unavailable_and_reads_go_on(path: Path) -> None:
    with SqliteBackend(path, busy_timeout=0.1) as b:
        saved = b.certificates.save_identity(new_identity(TENANT, "id-1", "app"))
        holder = raw(path)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(Unavailable) as exc:
                b.certificates.save_identity(replace(saved, blocked=True), [b.audit.item(TENANT, "x.y", "op")])
            assert exc.value.status == 503 and exc.value.retry_after >= 1
            assert b.certificates.get_identity(TENANT, "id-1") == saved  # a reader is not blocked (WAL)
        finally:
            holder.execute("ROLLBACK")
        assert b.certificates.save_identity(replace(saved, blocked=True)).blocked
        assert [e.event for e in audit_events(_Trail(b), TENANT)] == []


def test_writers_queued_past_the_timeout_are_unavailable(path: Path) -> None:
    with SqliteBackend(path, busy_timeout=0.1) as b, SqliteBackend(path, busy_timeout=0.1) as other:
        identity = new_identity(TENANT, "id-1", "app")
        # Another process's writer (another open file: another flock) in its transaction.
        with other.db.write():
            with pytest.raises(Unavailable):
                b.certificates.save_identity(identity)
        # A writer of another thread of this process in its transaction.
        inside, done = threading.Event(), threading.Event()

        def writer() -> None:
            with b.db.write():
                inside.set()
                done.wait(WAIT)

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            assert inside.wait(WAIT)
            with pytest.raises(Unavailable):
                b.certificates.save_identity(identity)
        finally:
            done.set()
            thread.join(WAIT)
        assert b.certificates.save_identity(identity).version == 1
        assert path.with_name(path.name + "-lock").stat().st_mode & 0o777 == 0o600


class _Trail:  # what audit_events reads
    def __init__(self, b: SqliteBackend) -> None:
        self.audit = b.audit


def test_revoked_certificates_sharing_a_serial_are_all_listed_page_by_page(backend: SqliteBackend) -> None:
    tenant = backend.tenants.create(TENANT, TenantConfig(), "s", "fp", False)
    ca = cert_record(TENANT, kind="ca", serial=7)  # a CA certificate claims no serial
    backend.tenants.add_ca(tenant, ca)
    client = issue(backend.certificates, TENANT, "id-1", serial=7).cert
    backend.certificates.revoke(ca, "cACompromise", None)
    backend.certificates.revoke(client, "superseded", None)
    reasons = sorted(r[2] for r in backend.certificates.iter_revoked(TENANT, page_size=1))
    assert reasons == ["cACompromise", "superseded"]


# -- retention -----------------------------------------------------------------------------------


def test_expired_audit_events_are_never_returned_and_are_purged(backend: SqliteBackend, path: Path) -> None:
    old = now() - timedelta(days=401)
    backend.audit.put(backend.audit.item(TENANT, "cr.received", "client", at=old))
    fresh = backend.audit.item(TENANT, "cr.received", "client")
    assert audit_events(_Trail(backend), TENANT, start=old - timedelta(days=1)) == []
    backend.db.next_purge = 0.0  # a purge is due
    backend.audit.put(fresh)
    assert audit_events(_Trail(backend), TENANT, start=old - timedelta(days=1)) == [fresh]
    assert raw(path).execute("SELECT count(*) FROM audit").fetchone()[0] == 1
    assert backend.db.next_purge > 0


# -- processes -----------------------------------------------------------------------------------


def _issuer(path: Path, worker: int, barrier: Any, results: Any) -> None:
    """A worker process: 50 certificates for its own identities, then 20 rounds racing the other
    worker on one identity (both read the same version, then both write)."""
    outcome: dict[str, Any] = {"won": [], "lost": 0, "unavailable": 0, "other": []}
    try:
        with SqliteBackend(path) as b:
            store = b.certificates
            for i in range(50):
                item = issue_args(store, TENANT, f"own-{worker}-{i}")
                store.store_issued(item.cert, item.identity, item.request, [b.audit.item(TENANT, "c.i", "w")])
                outcome["won"].append((None, item.cert.cert_id))
            for round_ in range(20):
                barrier.wait(WAIT)
                item = issue_args(store, TENANT, "contested")  # read the identity
                barrier.wait(WAIT)  # both have read the same version
                try:
                    store.store_issued(item.cert, item.identity, item.request, [b.audit.item(TENANT, "c.i", "w")])
                    outcome["won"].append((round_, item.cert.cert_id))
                except Conflict:
                    outcome["lost"] += 1
                except Unavailable:
                    outcome["unavailable"] += 1
                barrier.wait(WAIT)  # both have written
    except BaseException as exc:  # reported, not raised: the parent asserts there is none
        outcome["other"].append(repr(exc))
        barrier.abort()
    results.put(outcome)


def test_writers_in_two_processes_serialize_with_one_winner_per_race(path: Path) -> None:
    SqliteBackend(path).close()  # created and migrated before the workers start
    barrier, results = SPAWN.Barrier(2), SPAWN.Queue()
    workers = [SPAWN.Process(target=_issuer, args=(path, w, barrier, results)) for w in range(2)]
    for p in workers:
        p.start()
    outcomes = [results.get(timeout=WAIT) for _ in workers]
    for p in workers:
        p.join(WAIT)
    assert [o["other"] for o in outcomes] == [[], []]
    assert [o["unavailable"] for o in outcomes] == [0, 0]
    won = [w for o in outcomes for w in o["won"]]
    rounds = sorted(r for r, _ in won if r is not None)
    assert rounds == list(range(20))  # exactly one winner per round
    assert sum(o["lost"] for o in outcomes) == 20
    with SqliteBackend(path) as b:
        for _, cert_id in won:  # every success is stored, with its serial claim
            cert = b.certificates.get_certificate(TENANT, cert_id)
            assert cert is not None and b.certificates.get_certificate_by_serial(TENANT, cert.serial) == cert
        contested = b.certificates.get_identity(TENANT, "contested")
        assert contested is not None and (contested.version, contested.certificates) == (20, 20)
        assert contested.cert_id == next(c for r, c in won if r == 19)
        listed, _ = b.certificates.list_identity_certificates(TENANT, "contested", limit=100, next_token=None)
        assert len(listed) == 20
        assert len(audit_events(_Trail(b), TENANT, limit=500)) == 120  # one per success, none per loss
        conn = raw(path)
        assert conn.execute("SELECT count(*) FROM certificates").fetchone()[0] == 120
        assert conn.execute("SELECT count(*) FROM serials").fetchone()[0] == 120


def _crash_inside_a_transaction(path: Path, pipe: Any) -> None:
    """A worker that stops inside store_issued's transaction, before COMMIT, and waits to be killed."""
    from chalicelib.store.sqlite import certificates

    real = certificates.insert_events

    def insert_then_wait(*args: Any) -> None:
        real(*args)
        pipe.send("inside")
        pipe.recv()  # never comes: the parent kills this process

    certificates.insert_events = insert_then_wait
    backend = SqliteBackend(path)
    item = issue_args(backend.certificates, TENANT, "crashing")
    pipe.send(item.cert.cert_id)
    backend.certificates.store_issued(item.cert, item.identity, item.request, [backend.audit.item(TENANT, "c", "w")])


def test_a_process_killed_inside_a_transaction_leaves_nothing_half_written(path: Path) -> None:
    with SqliteBackend(path) as b:
        before = issue(b.certificates, TENANT, "crashing", [b.audit.item(TENANT, "c", "w")])
    parent, child = SPAWN.Pipe()
    worker = SPAWN.Process(target=_crash_inside_a_transaction, args=(path, child))
    worker.start()
    try:
        assert parent.poll(WAIT)
        cert_id = parent.recv()
        assert parent.poll(WAIT) and parent.recv() == "inside"  # every row written, no COMMIT yet
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.join(WAIT)
    assert worker.exitcode == -signal.SIGKILL
    with SqliteBackend(path, busy_timeout=1) as b:
        assert b.certificates.get_certificate(TENANT, cert_id) is None
        assert b.certificates.get_identity(TENANT, "crashing") == replace(before.identity, version=1)
        assert len(audit_events(_Trail(b), TENANT)) == 1
        conn = raw(path)
        assert [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("certificates", "serials")] == [1, 1]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        issue(b.certificates, TENANT, "crashing")  # the lock died with the process: writes go on


# -- no AWS --------------------------------------------------------------------------------------


def test_the_sqlite_context_imports_no_aws_library(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path\n"
        "from chalicelib.context import sqlite_context\n"
        "from chalicelib.store.memory import MemoryBackend\n"
        f"ctx = sqlite_context(Path({str(tmp_path / 'x.db')!r}), MemoryBackend().keystore)\n"
        "ctx.certificates.get_identity('t1', 'i')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore', 'pynamodb'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=WAIT)
    assert (out.returncode, out.stdout.strip()) == (0, "[]"), out.stderr
