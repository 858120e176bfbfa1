"""``TransferStore`` on the SQLite database (chalicelib/store/transfer.py): a tenant read in one
snapshot, records written as they are. For the transfer tool only; importing it imports no AWS library.

Reads use a connection of their own, one read transaction per tenant: what is exported is the tenant
as of one commit, while the service goes on writing (WAL). The database must be of this release's
schema (the service migrates it when it starts); reading it changes nothing. Writes go through a
``SqliteBackend`` (opened, and so created or migrated, at the first write), a batch per transaction,
each row an ``INSERT ... ON CONFLICT DO NOTHING``: a key in use is compared, never overwritten.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from chalicelib.domain import AuditEvent, CertificateRecord, IdentityRecord, RequestRecord, Tenant
from chalicelib.store.sqlite import SqliteBackend, schema
from chalicelib.store.sqlite.audit import _COLUMNS as _AUDIT_COLUMNS
from chalicelib.store.sqlite.audit import _INSERT as _INSERT_AUDIT
from chalicelib.store.sqlite.audit import _event
from chalicelib.store.sqlite.audit import _row as _audit_row
from chalicelib.store.sqlite.certificates import (
    _CERT_COLUMNS,
    _GET_CERT,
    _GET_IDENTITY,
    _GET_REQUEST,
    _IDENTITY_COLUMNS,
    _INSERT_CERT,
    _INSERT_IDENTITY,
    _INSERT_SERIAL,
    _REQUEST_COLUMNS,
    _cert,
    _cert_row,
    _identity,
    _identity_row,
    _request,
    _request_row,
)
from chalicelib.store.sqlite.db import hex_serial, now, text, text_or_none
from chalicelib.store.sqlite.tenants import _GET as _GET_TENANT
from chalicelib.store.sqlite.tenants import _tenant
from chalicelib.store.transfer import Outcome, Record, SerialClaim

_NEW = " ON CONFLICT DO NOTHING"
_TENANT_IDS = "SELECT tenant_id FROM tenants ORDER BY tenant_id"
_CERTIFICATES = f"SELECT {_CERT_COLUMNS} FROM certificates WHERE tenant_id = ? ORDER BY created_at, cert_id"
_SERIALS = "SELECT serial, cert_id FROM serials WHERE tenant_id = ? ORDER BY serial"
_GET_SERIAL = "SELECT cert_id FROM serials WHERE tenant_id = ? AND serial = ?"
_IDENTITIES = f"SELECT {_IDENTITY_COLUMNS} FROM identities WHERE tenant_id = ? ORDER BY identity"
_REQUESTS = f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE tenant_id = ? ORDER BY created_at, cr_id"
_AUDIT = f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE tenant = ? AND expires_at > ? ORDER BY sk"
_INSERT_REQUEST = f"INSERT INTO requests ({_REQUEST_COLUMNS}) VALUES ({', '.join('?' * 17)})" + _NEW
_GET_AUDIT = f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE tenant = ? AND sk = ?"
_INSERT_TENANT = """INSERT INTO tenants (tenant_id, config, key_secret, key_fingerprint, key_imported, active_ca,
    created_at, modified_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"""
_INSERT_TENANT_CA = """INSERT INTO tenant_cas (tenant_id, position, cert_id, key_secret, state, state_at)
    VALUES (?, ?, ?, ?, ?, ?)"""


class SchemaMismatch(RuntimeError):
    """The database is not of this release's schema: the service that reads it migrates it first."""


class SqliteTransfer:
    """A tenant's records on the SQLite database ``path`` (which must exist to be read)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._backend: SqliteBackend | None = None

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    # -- reading ---------------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise FileNotFoundError(f"no database {self.path}")
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            application = int(conn.execute("PRAGMA application_id").fetchone()[0])
        except BaseException:
            conn.close()
            raise
        if application != schema.APPLICATION_ID or version != schema.VERSION:
            conn.close()
            raise SchemaMismatch(
                f"{self.path} is not a SeaCat PKI database of schema version {schema.VERSION} (it has "
                f"{version}): start this release's service on it once (it migrates the schema), then try again"
            )
        return conn

    def tenant_ids(self) -> list[str]:
        conn = self._reader()
        try:
            return [str(r[0]) for r in conn.execute(_TENANT_IDS)]
        finally:
            conn.close()

    def tenant(self, tenant_id: str) -> Tenant | None:
        if self._backend is None and not self.path.is_file():
            return None
        conn = self._backend.db.connection() if self._backend is not None else self._reader()
        try:
            return _tenant(conn.execute(_GET_TENANT, (tenant_id,)).fetchall())
        finally:
            if self._backend is None:
                conn.close()

    def records(self, tenant_id: str, *, audit: bool) -> Iterator[Record]:
        conn = self._reader()
        try:
            conn.execute("BEGIN")  # one snapshot from the first read to the last
            tenant = _tenant(conn.execute(_GET_TENANT, (tenant_id,)).fetchall())
            if tenant is None:
                return
            yield tenant
            for row in conn.execute(_CERTIFICATES, (tenant_id,)):
                cert = _cert(row)
                assert cert is not None
                yield cert
            for serial, cert_id in conn.execute(_SERIALS, (tenant_id,)):
                yield SerialClaim(tenant_id, int(serial, 16), cert_id)
            for row in conn.execute(_IDENTITIES, (tenant_id,)):
                identity = _identity(row)
                assert identity is not None
                yield identity
            for row in conn.execute(_REQUESTS, (tenant_id,)):
                request = _request(row)
                assert request is not None
                yield request
            if audit:
                for row in conn.execute(_AUDIT, (tenant_id, text(now()))):
                    yield _event(tenant_id, row)
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()

    # -- writing ---------------------------------------------------------------------------------

    def backend(self) -> SqliteBackend:
        if self._backend is None:
            self._backend = SqliteBackend(self.path)
        return self._backend

    def put(self, records: Sequence[Record]) -> list[Outcome]:
        db = self.backend().db
        with db.write() as conn:
            return [_put(conn, r) for r in records]


def _outcome(written: int, stored: Any, record: Any) -> Outcome:
    if written:
        return Outcome.WRITTEN
    return Outcome.SAME if stored == record else Outcome.DIFFERS


def _put(conn: sqlite3.Connection, r: Record) -> Outcome:
    if isinstance(r, CertificateRecord):
        written = conn.execute(_INSERT_CERT + _NEW, _cert_row(r)).rowcount
        return _outcome(written, _cert(conn.execute(_GET_CERT, (r.tenant_id, r.cert_id)).fetchone()), r)
    if isinstance(r, SerialClaim):
        written = conn.execute(_INSERT_SERIAL + _NEW, (r.tenant_id, hex_serial(r.serial), r.cert_id)).rowcount
        row = conn.execute(_GET_SERIAL, (r.tenant_id, hex_serial(r.serial))).fetchone()
        return _outcome(written, row[0] if row else None, r.cert_id)
    if isinstance(r, IdentityRecord):
        written = conn.execute(_INSERT_IDENTITY + _NEW, _identity_row(r, r.version, r.modified_at)).rowcount
        return _outcome(written, _identity(conn.execute(_GET_IDENTITY, (r.tenant_id, r.identity)).fetchone()), r)
    if isinstance(r, RequestRecord):
        written = conn.execute(_INSERT_REQUEST, _request_row(r)).rowcount
        return _outcome(written, _request(conn.execute(_GET_REQUEST, (r.tenant_id, r.cr_id)).fetchone()), r)
    if isinstance(r, AuditEvent):
        row = _audit_row(r)
        written = conn.execute(_INSERT_AUDIT + _NEW, row).rowcount
        stored = conn.execute(_GET_AUDIT, (row[0], row[1])).fetchone()
        return _outcome(written, _event(r.tenant, stored) if stored else None, r)
    if isinstance(r, Tenant):
        columns = (r.tenant_id, json.dumps(r.config.to_json()), r.key_secret, r.key_fingerprint, int(r.key_imported))
        times = (r.active_ca, text(r.created_at), text(r.modified_at), r.version)
        written = conn.execute(_INSERT_TENANT, (*columns, *times)).rowcount
        if written:
            conn.executemany(
                _INSERT_TENANT_CA,
                [
                    (r.tenant_id, n, ca.cert_id, ca.key_secret, str(ca.state), text_or_none(ca.state_at))
                    for n, ca in enumerate(r.cas)
                ],
            )
        return _outcome(written, _tenant(conn.execute(_GET_TENANT, (r.tenant_id,)).fetchall()), r)
    raise TypeError(f"not a record: {type(r).__name__}")
