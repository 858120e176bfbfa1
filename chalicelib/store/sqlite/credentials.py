"""CredentialStore on SQLite: EST enrolment credentials. A use is taken by one conditional UPDATE, so
two enrolments racing for the last use cannot both have it (SQLite's write lock orders them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chalicelib.domain import EnrolmentCredential
from chalicelib.store.sqlite.audit import insert_events
from chalicelib.store.sqlite.certificates import _list_key, read_page
from chalicelib.store.sqlite.db import Database, now, text, text_or_none, time_of, time_or_none

_COLUMNS = """tenant_id, username, secret_hash, profile, uses, uses_left, expires_at, created_at, revoked_at, label,
    last_used_at"""
_GET = f"SELECT {_COLUMNS} FROM est_credentials WHERE tenant_id = ? AND username = ?"
_INSERT = f"INSERT INTO est_credentials ({_COLUMNS}) VALUES ({', '.join('?' * 11)})"
_LIST = f"""SELECT {_COLUMNS} FROM est_credentials WHERE tenant_id = ?
    ORDER BY created_at DESC, username DESC LIMIT ?"""
_LIST_AFTER = f"""SELECT {_COLUMNS} FROM est_credentials WHERE tenant_id = ? AND (created_at, username) < (?, ?)
    ORDER BY created_at DESC, username DESC LIMIT ?"""
_CONSUME = """UPDATE est_credentials SET uses_left = uses_left - 1, last_used_at = ?
    WHERE tenant_id = ? AND username = ? AND revoked_at IS NULL AND uses_left > 0 AND expires_at > ?"""
_REVOKE = "UPDATE est_credentials SET revoked_at = ? WHERE tenant_id = ? AND username = ? AND revoked_at IS NULL"


def _credential(row: Any) -> EnrolmentCredential | None:
    if row is None:
        return None
    tenant_id, username, secret_hash, profile, uses, uses_left, expires_at, created_at, revoked_at, label, used = row
    return EnrolmentCredential(
        tenant_id,
        username,
        secret_hash,
        profile,
        int(uses),
        int(uses_left),
        time_of(expires_at),
        time_of(created_at),
        time_or_none(revoked_at),
        label,
        time_or_none(used),
    )


class SqliteCredentials:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, credential: EnrolmentCredential, audit: Sequence[Any] = ()) -> None:
        c = credential
        with self._db.write("username already in use") as conn:
            conn.execute(
                _INSERT,
                (
                    c.tenant_id,
                    c.username,
                    c.secret_hash,
                    c.profile,
                    c.uses,
                    c.uses_left,
                    text(c.expires_at),
                    text(c.created_at),
                    text_or_none(c.revoked_at),
                    c.label,
                    text_or_none(c.last_used_at),
                ),
            )
            insert_events(self._db, conn, audit)

    def get(self, tenant_id: str, username: str) -> EnrolmentCredential | None:
        with self._db.read() as conn:
            return _credential(conn.execute(_GET, (tenant_id, username)).fetchone())

    def list_page(
        self, tenant_id: str, *, limit: int, next_token: str | None
    ) -> tuple[list[EnrolmentCredential], str | None]:
        list_key = _list_key("est_credentials", tenant_id)
        with self._db.read() as conn:
            return read_page(
                conn,
                list_key,
                next_token,
                limit,
                (_LIST, _LIST_AFTER),
                (tenant_id,),
                _credential,
                lambda c: (text(c.created_at), c.username),
            )

    def consume(
        self, tenant_id: str, username: str, now: datetime, audit: Sequence[Any] = ()
    ) -> EnrolmentCredential | None:
        with self._db.write() as conn:
            if conn.execute(_CONSUME, (text(now), tenant_id, username, text(now))).rowcount != 1:
                return None
            insert_events(self._db, conn, audit)
            return _credential(conn.execute(_GET, (tenant_id, username)).fetchone())

    def revoke(self, tenant_id: str, username: str, audit: Sequence[Any] = ()) -> EnrolmentCredential | None:
        with self._db.write() as conn:
            if conn.execute(_REVOKE, (text(now()), tenant_id, username)).rowcount == 1:
                insert_events(self._db, conn, audit)
            return _credential(conn.execute(_GET, (tenant_id, username)).fetchone())
