"""CertificateStore on SQLite: certificates, serial claims, SeaCat identities and certificate requests.

The DynamoDB store's transactions, each one SQLite transaction under the write lock: what DynamoDB
checks with conditions is checked here by keys (an INSERT of a key that exists fails: Conflict) or
by ``WHERE version = ?`` (no row changed: Conflict), and a Conflict rolls everything back.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from chalicelib.domain import (
    CertificateKind,
    CertificateRecord,
    IdentityRecord,
    RequestKind,
    RequestRecord,
    RequestState,
)
from chalicelib.errors import Conflict, InvalidInput
from chalicelib.store.sqlite.audit import insert_events
from chalicelib.store.sqlite.db import (
    Database,
    hex_serial,
    now,
    text,
    text_or_none,
    time_of,
    time_or_none,
)

REVOKED_PAGE = 500  # revoked certificates read per statement by iter_revoked (its default page)
_MAX_TOKEN = 1024  # characters of a page token: base64 of a list hash, a time and a 96-hex id

# -- certificates --------------------------------------------------------------------------------

_CERT_COLUMNS = """tenant_id, cert_id, kind, serial, der, not_before, not_after, created_at, modified_at, version,
    identity, ca_id, cr_id, revoked_at, revocation_reason, final_crl"""
_INSERT_CERT = f"INSERT INTO certificates ({_CERT_COLUMNS}) VALUES ({', '.join('?' * 16)})"
_GET_CERT = f"SELECT {_CERT_COLUMNS} FROM certificates WHERE tenant_id = ? AND cert_id = ?"
_GET_BY_SERIAL = f"""SELECT {", ".join("c." + c.strip() for c in _CERT_COLUMNS.split(","))}
FROM serials AS s JOIN certificates AS c ON c.tenant_id = s.tenant_id AND c.cert_id = s.cert_id
WHERE s.tenant_id = ? AND s.serial = ?"""
_INSERT_SERIAL = "INSERT INTO serials (tenant_id, serial, cert_id) VALUES (?, ?, ?)"
_LIST_BY_IDENTITY = f"""SELECT {_CERT_COLUMNS} FROM certificates
WHERE tenant_id = ? AND identity = ? ORDER BY created_at DESC, cert_id DESC LIMIT ?"""
_LIST_BY_IDENTITY_AFTER = f"""SELECT {_CERT_COLUMNS} FROM certificates
WHERE tenant_id = ? AND identity = ? AND (created_at, cert_id) < (?, ?)
ORDER BY created_at DESC, cert_id DESC LIMIT ?"""
_REVOKE_CERT = """UPDATE certificates SET revoked_at = ?, revocation_reason = ?, modified_at = ?, version = version + 1
WHERE tenant_id = ? AND cert_id = ? AND revoked_at IS NULL"""
# By (serial, id): a CA certificate claims no serial, so one may share a client certificate's.
_REVOKED = """SELECT serial, revoked_at, revocation_reason, not_after, ca_id, cert_id FROM certificates
WHERE tenant_id = ? AND revoked_at IS NOT NULL AND (serial, cert_id) > (?, ?) ORDER BY serial, cert_id LIMIT ?"""
# Counted in the index alone (it holds unrevoked certificates only, by CA and expiry).
_COUNT_BY_CA = """SELECT count(*) FROM certificates INDEXED BY certificates_by_ca
WHERE tenant_id = ? AND ca_id = ? AND not_after > ? AND revoked_at IS NULL"""


def _cert_row(r: CertificateRecord) -> tuple[Any, ...]:
    return (
        r.tenant_id,
        r.cert_id,
        r.kind,
        hex_serial(r.serial),
        r.der,
        text(r.not_before),
        text(r.not_after),
        text(r.created_at),
        text(r.modified_at),
        r.version,
        r.identity,
        r.ca_id,
        r.cr_id,
        text_or_none(r.revoked_at),
        r.revocation_reason,
        r.final_crl,
    )


def _cert(row: Any) -> CertificateRecord | None:
    if row is None:
        return None
    return CertificateRecord(
        tenant_id=row[0],
        cert_id=row[1],
        kind=CertificateKind(row[2]),
        serial=int(row[3], 16),
        der=bytes(row[4]),
        not_before=time_of(row[5]),
        not_after=time_of(row[6]),
        created_at=time_of(row[7]),
        modified_at=time_of(row[8]),
        version=row[9],
        identity=row[10],
        ca_id=row[11],
        cr_id=row[12],
        revoked_at=time_or_none(row[13]),
        revocation_reason=row[14],
        final_crl=bytes(row[15]) if row[15] is not None else None,
    )


def insert_certificate(conn: sqlite3.Connection, record: CertificateRecord) -> None:
    """Store a certificate; its id in use is an IntegrityError (the transaction's Conflict)."""
    conn.execute(_INSERT_CERT, _cert_row(record))


_SET_FINAL_CRL = "UPDATE certificates SET final_crl = ?, modified_at = ? WHERE tenant_id = ? AND cert_id = ?"


def set_final_crl(conn: sqlite3.Connection, tenant_id: str, cert_id: str, der: bytes, at: datetime) -> bool:
    """Store a CA certificate's final CRL in the caller's transaction (its version stays, as on
    DynamoDB); False if there is no such certificate."""
    return bool(conn.execute(_SET_FINAL_CRL, (bytes(der), text(at), tenant_id, cert_id)).rowcount == 1)


# -- identities ----------------------------------------------------------------------------------

_IDENTITY_COLUMNS = """tenant_id, identity, application, approved, blocked, revoked_at, revocation_reason,
    revoked_serials, cert_id, cert_serial, cert_der, cert_not_before, cert_not_after, certificates,
    created_at, modified_at, version"""
_GET_IDENTITY = f"SELECT {_IDENTITY_COLUMNS} FROM identities WHERE tenant_id = ? AND identity = ?"
_INSERT_IDENTITY = f"INSERT INTO identities ({_IDENTITY_COLUMNS}) VALUES ({', '.join('?' * 17)})"
_UPDATE_IDENTITY = f"""UPDATE identities SET ({_IDENTITY_COLUMNS}) = ({", ".join("?" * 17)})
WHERE tenant_id = ? AND identity = ? AND version = ?"""
_ADD_REVOKED_SERIAL = """UPDATE identities SET revoked_serials = ?, modified_at = ?, version = version + 1
WHERE tenant_id = ? AND identity = ?"""
_GET_REVOKED_SERIALS = "SELECT revoked_serials FROM identities WHERE tenant_id = ? AND identity = ?"


def _serials_text(serials: frozenset[int]) -> str | None:
    return " ".join(hex_serial(s) for s in sorted(serials)) or None


def _serials(value: str | None) -> frozenset[int]:
    return frozenset(int(s, 16) for s in value.split()) if value else frozenset()


def _identity_row(r: IdentityRecord, version: int, modified_at: datetime) -> tuple[Any, ...]:
    return (
        r.tenant_id,
        r.identity,
        r.application,
        int(r.approved),
        int(r.blocked),
        text_or_none(r.revoked_at),
        r.revocation_reason,
        _serials_text(r.revoked_serials),
        r.cert_id,
        hex_serial(r.cert_serial) if r.cert_serial is not None else None,
        r.cert_der,
        text_or_none(r.cert_not_before),
        text_or_none(r.cert_not_after),
        r.certificates,
        text(r.created_at),
        text(modified_at),
        version,
    )


def _identity(row: Any) -> IdentityRecord | None:
    if row is None:
        return None
    return IdentityRecord(
        tenant_id=row[0],
        identity=row[1],
        application=row[2],
        approved=bool(row[3]),
        blocked=bool(row[4]),
        revoked_at=time_or_none(row[5]),
        revocation_reason=row[6],
        revoked_serials=_serials(row[7]),
        cert_id=row[8],
        cert_serial=int(row[9], 16) if row[9] is not None else None,
        cert_der=bytes(row[10]) if row[10] is not None else None,
        cert_not_before=time_or_none(row[11]),
        cert_not_after=time_or_none(row[12]),
        certificates=row[13],
        created_at=time_of(row[14]),
        modified_at=time_of(row[15]),
        version=row[16],
    )


def _put_identity(conn: sqlite3.Connection, record: IdentityRecord, modified_at: datetime) -> IdentityRecord:
    """Write an identity guarded by the version it was read at: 0 means "must not exist yet" (an
    INSERT, whose key in use is an IntegrityError), any other the stored version. Stored one on."""
    stored = replace(record, version=record.version + 1, modified_at=modified_at)
    row = _identity_row(record, stored.version, modified_at)
    if record.version == 0:
        conn.execute(_INSERT_IDENTITY, row)
    elif conn.execute(_UPDATE_IDENTITY, (*row, record.tenant_id, record.identity, record.version)).rowcount != 1:
        raise Conflict(f"identity {record.identity} was changed concurrently, retry")
    return stored


# -- requests ------------------------------------------------------------------------------------

_REQUEST_COLUMNS = """tenant_id, cr_id, identity, application, der, state, created_at, modified_at, version,
    attributes, created_raw, valid_to_raw, reason, cert_id, decided_by, kind, profile"""
_GET_REQUEST = f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE tenant_id = ? AND cr_id = ?"
_PUT_REQUEST = f"""INSERT INTO requests ({_REQUEST_COLUMNS}) VALUES ({", ".join("?" * 17)})
ON CONFLICT (tenant_id, cr_id) DO UPDATE SET ({_REQUEST_COLUMNS}) =
({", ".join("excluded." + c.strip() for c in _REQUEST_COLUMNS.split(","))})"""
_REQUEST_STATE = "SELECT state FROM requests WHERE tenant_id = ? AND cr_id = ?"
_LIST_PENDING = f"""SELECT {_REQUEST_COLUMNS} FROM requests
WHERE tenant_id = ? AND state = 'pending' ORDER BY created_at, cr_id LIMIT ?"""
_LIST_PENDING_AFTER = f"""SELECT {_REQUEST_COLUMNS} FROM requests
WHERE tenant_id = ? AND state = 'pending' AND (created_at, cr_id) > (?, ?) ORDER BY created_at, cr_id LIMIT ?"""


def _request_row(r: RequestRecord) -> tuple[Any, ...]:
    return (
        r.tenant_id,
        r.cr_id,
        r.identity,
        r.application,
        r.der,
        r.state,
        text(r.created_at),
        text(r.modified_at),
        r.version,
        json.dumps([list(a) for a in r.attributes]),
        r.created_raw,
        r.valid_to_raw,
        r.reason,
        r.cert_id,
        r.decided_by,
        str(r.kind),
        r.profile,
    )


def _request(row: Any) -> RequestRecord | None:
    if row is None:
        return None
    return RequestRecord(
        tenant_id=row[0],
        cr_id=row[1],
        identity=row[2],
        application=row[3],
        der=bytes(row[4]),
        state=RequestState(row[5]),
        created_at=time_of(row[6]),
        modified_at=time_of(row[7]),
        version=row[8],
        attributes=tuple((str(k), str(v)) for k, v in json.loads(row[9])),
        created_raw=row[10],
        valid_to_raw=row[11],
        reason=row[12],
        cert_id=row[13],
        decided_by=row[14],
        kind=RequestKind(row[15]),
        profile=row[16],
    )


# -- page tokens ---------------------------------------------------------------------------------

_R = TypeVar("_R")  # a record of a paged list


def _list_key(*parts: str) -> str:
    """A short hash naming one list (its kind, tenant and identity): a token works for that list only."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _page_token(list_key: str, after: tuple[str, str]) -> str:
    raw = json.dumps({"list": list_key, "after": list(after)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _page_after(token: str, list_key: str) -> tuple[str, str]:
    """The (time, id) a token of this list resumes after, or 400 naming ``next`` (another list's too)."""
    refused = InvalidInput("not a page token of this list", field="next")
    if len(token) > _MAX_TOKEN:
        raise refused
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:  # not base64 (binascii.Error), not UTF-8, not JSON
        raise refused from None
    after = state.get("after") if isinstance(state, dict) and state.get("list") == list_key else None
    if not (isinstance(after, list) and len(after) == 2 and all(isinstance(k, str) for k in after)):
        raise refused
    if _page_token(list_key, (after[0], after[1])) != token:  # only the spelling we hand out
        raise refused
    return after[0], after[1]


def read_page(
    conn: sqlite3.Connection,
    list_key: str,
    next_token: str | None,
    limit: int,
    queries: tuple[str, str],
    scope: tuple[Any, ...],
    parse: Callable[[Any], _R | None],
    key: Callable[[_R], tuple[str, str]],
) -> tuple[list[_R], str | None]:
    """One page of a keyset-paged list: ``queries`` are its first page's statement and the one that
    resumes after a (time, id), each taking ``scope`` first and the page size (one row more than
    ``limit``, which says whether another page follows) last; ``key`` is a record's (time, id)."""
    first, after = queries
    if next_token:
        at, last = _page_after(next_token, list_key)
        rows = conn.execute(after, (*scope, at, last, limit + 1)).fetchall()
    else:
        rows = conn.execute(first, (*scope, limit + 1)).fetchall()
    found = [r for r in map(parse, rows[:limit]) if r is not None]
    more = len(rows) > limit
    return found, (_page_token(list_key, key(found[-1])) if more else None)


# -- the port ------------------------------------------------------------------------------------


class SqliteCertificates:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get_certificate(self, tenant_id: str, cert_id: str) -> CertificateRecord | None:
        with self._db.read() as conn:
            return _cert(conn.execute(_GET_CERT, (tenant_id, cert_id)).fetchone())

    def get_certificate_by_serial(self, tenant_id: str, serial: int) -> CertificateRecord | None:
        """The certificate the tenant issued with this serial (its serial claim names it)."""
        with self._db.read() as conn:
            return _cert(conn.execute(_GET_BY_SERIAL, (tenant_id, hex_serial(serial))).fetchone())

    def list_identity_certificates(
        self, tenant_id: str, identity: str, *, limit: int, next_token: str | None
    ) -> tuple[list[CertificateRecord], str | None]:
        """Newest first (issue time, then id); a page resumes below the last one's key."""
        list_key = _list_key("certificates", tenant_id, identity)
        queries = (_LIST_BY_IDENTITY, _LIST_BY_IDENTITY_AFTER)
        with self._db.read() as conn:
            return read_page(
                conn,
                list_key,
                next_token,
                limit,
                queries,
                (tenant_id, identity),
                _cert,
                lambda c: (text(c.created_at), c.cert_id),
            )

    def get_identity(self, tenant_id: str, identity: str) -> IdentityRecord | None:
        memo = self._db.read_memo()
        key = ("identity", tenant_id, identity)
        if key in memo:
            return memo[key]  # type: ignore[no-any-return]
        with self._db.read() as conn:
            found = memo[key] = _identity(conn.execute(_GET_IDENTITY, (tenant_id, identity)).fetchone())
        return found

    def save_identity(self, record: IdentityRecord, audit: Sequence[Any] = ()) -> IdentityRecord:
        """Write an identity guarded by the version it was read at; Conflict if it moved."""
        with self._db.write(f"identity {record.identity} was changed concurrently, retry") as conn:
            stored = _put_identity(conn, record, now())
            insert_events(self._db, conn, audit)
        return stored

    def get_request(self, tenant_id: str, cr_id: str) -> RequestRecord | None:
        with self._db.read() as conn:
            return _request(conn.execute(_GET_REQUEST, (tenant_id, cr_id)).fetchone())

    def save_request(self, record: RequestRecord, audit: Sequence[Any] = ()) -> RequestRecord:
        """Record a request and its latest outcome (an identical CR sent again is the same request)."""
        stored = replace(record, version=record.version + 1, modified_at=now())
        with self._db.write("the request was decided concurrently") as conn:
            conn.execute(_PUT_REQUEST, _request_row(stored))
            insert_events(self._db, conn, audit)
        return stored

    def list_pending(
        self, tenant_id: str, *, limit: int, next_token: str | None
    ) -> tuple[list[RequestRecord], str | None]:
        """Oldest first (creation time, then id); a page resumes after the last one's key."""
        list_key = _list_key("pending", tenant_id)
        queries = (_LIST_PENDING, _LIST_PENDING_AFTER)
        with self._db.read() as conn:
            return read_page(
                conn,
                list_key,
                next_token,
                limit,
                queries,
                (tenant_id,),
                _request,
                lambda r: (text(r.created_at), r.cr_id),
            )

    def decide(self, request: RequestRecord, identity: IdentityRecord, audit: Sequence[Any] = ()) -> None:
        """Apply an approval or rejection: the request and its identity change together or not at all."""
        decided = "the request was decided concurrently"
        with self._db.write(decided) as conn:
            state = conn.execute(_REQUEST_STATE, (request.tenant_id, request.cr_id)).fetchone()
            if state is None or state[0] != "pending":
                raise Conflict(decided)
            at = now()
            _put_identity(conn, identity, at)
            conn.execute(_PUT_REQUEST, _request_row(replace(request, version=request.version + 1, modified_at=at)))
            insert_events(self._db, conn, audit)

    def store_issued(
        self, cert: CertificateRecord, identity: IdentityRecord, request: RequestRecord, audit: Sequence[Any] = ()
    ) -> None:
        """Store an issued certificate with its serial claim, the identity's new state (guarded by
        the version read) and the request: all or nothing. Conflict when the certificate id or the
        serial is taken or the identity moved (a concurrent enrolment of the same key)."""
        with self._db.write("a concurrent request changed this identity") as conn:
            insert_certificate(conn, cert)
            conn.execute(_INSERT_SERIAL, (cert.tenant_id, hex_serial(cert.serial), cert.cert_id))
            _put_identity(conn, identity, identity.modified_at)  # as given, as DynamoDB stores it
            conn.execute(_PUT_REQUEST, _request_row(replace(request, version=request.version + 1)))
            insert_events(self._db, conn, audit)

    def revoke(
        self, cert: CertificateRecord, reason: str, identity: IdentityRecord | None, audit: Sequence[Any] = ()
    ) -> None:
        """Mark a certificate revoked and add its serial to its identity's revoked serials (what the
        gateway reads). Conflict, with nothing written, if it is unknown or revoked already, or if
        the identity named does not exist."""
        revoked = "the certificate was revoked concurrently"
        with self._db.write(revoked) as conn:
            at = text(now())
            if conn.execute(_REVOKE_CERT, (at, reason, at, cert.tenant_id, cert.cert_id)).rowcount != 1:
                raise Conflict(revoked)
            if identity is not None:
                # Whatever version was read: the serial is added to the stored identity, whose version
                # moves on, so a write from an earlier read (which would drop it) fails and retries.
                row = conn.execute(_GET_REVOKED_SERIALS, (identity.tenant_id, identity.identity)).fetchone()
                if row is None:
                    raise Conflict(revoked)
                serials = _serials_text(_serials(row[0]) | {cert.serial})
                conn.execute(_ADD_REVOKED_SERIAL, (serials, at, identity.tenant_id, identity.identity))
            insert_events(self._db, conn, audit)

    def iter_revoked(
        self, tenant_id: str, *, page_size: int | None = None
    ) -> Iterator[tuple[int, datetime, str, datetime, str | None]]:
        """(serial, revoked at, reason, not after, issuing CA id) of every revoked certificate of the
        tenant, a page per statement (no statement stays open between two items)."""
        after, size = ("", ""), max(1, page_size or REVOKED_PAGE)
        while True:
            with self._db.read() as conn:
                rows = conn.execute(_REVOKED, (tenant_id, *after, size)).fetchall()
            for serial, revoked_at, reason, not_after, ca_id, _ in rows:
                yield int(serial, 16), time_of(revoked_at), reason or "unspecified", time_of(not_after), ca_id
            if len(rows) < size:
                return
            after = (rows[-1][0], rows[-1][5])

    def count_by_ca(self, tenant_id: str, ca_id: str, now: datetime) -> int:
        """The tenant's unexpired (``not_after`` > now) and unrevoked certificates issued by CA
        certificate ``ca_id``: one range of the index ``certificates_by_ca``."""
        with self._db.read() as conn:
            return int(conn.execute(_COUNT_BY_CA, (tenant_id, ca_id, text(now))).fetchone()[0])
