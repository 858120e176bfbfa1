"""TokenStore on SQLite: admin bearer tokens, stored as SHA-256 hashes only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chalicelib.domain import StoredToken
from chalicelib.store.sqlite.audit import insert_events
from chalicelib.store.sqlite.certificates import _list_key, read_page
from chalicelib.store.sqlite.db import Database, now, text, text_or_none, time_of, time_or_none

_COLUMNS = "token_id, token_hash, tenant_id, created_at, revoked_at, label, expires_at"
_GET = f"SELECT {_COLUMNS} FROM tokens WHERE token_id = ?"
_INSERT = """INSERT INTO tokens (token_id, token_hash, tenant_id, label, created_at, revoked_at, expires_at)
VALUES (?, ?, ?, ?, ?, NULL, ?)"""
_UPSERT = (
    _INSERT
    + """ ON CONFLICT (token_id) DO UPDATE SET token_hash = excluded.token_hash, tenant_id = excluded.tenant_id,
    label = excluded.label, created_at = excluded.created_at, revoked_at = NULL, expires_at = excluded.expires_at"""
)
_REVOKE = "UPDATE tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL"
_LIST = f"""SELECT {_COLUMNS} FROM tokens WHERE tenant_id = ?
    ORDER BY created_at DESC, token_id DESC LIMIT ?"""
_LIST_AFTER = f"""SELECT {_COLUMNS} FROM tokens WHERE tenant_id = ? AND (created_at, token_id) < (?, ?)
    ORDER BY created_at DESC, token_id DESC LIMIT ?"""


def _token(row: Any) -> StoredToken | None:
    if row is None:
        return None
    token_id, token_hash, tenant_id, created_at, revoked_at, label, expires_at = row
    return StoredToken(
        token_id, token_hash, tenant_id, time_of(created_at), time_or_none(revoked_at), label, time_or_none(expires_at)
    )


class SqliteTokens:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, token_id: str) -> StoredToken | None:
        with self._db.read() as conn:
            return _token(conn.execute(_GET, (token_id,)).fetchone())

    def put(
        self,
        token_id: str,
        token_hash: str,
        tenant_id: str | None,
        label: str | None,
        *,
        overwrite: bool = False,
        created_at: datetime | None = None,
        expires_at: datetime | None = None,
        audit: Sequence[Any] = (),
    ) -> None:
        row = (token_id, token_hash, tenant_id, label, text(created_at or now()), text_or_none(expires_at))
        with self._db.write("token id already in use") as conn:
            conn.execute(_UPSERT if overwrite else _INSERT, row)
            insert_events(self._db, conn, audit)

    def revoke(self, token_id: str, audit: Sequence[Any] = ()) -> StoredToken | None:
        """Revoke once; revoking again answers the recorded state (and writes no event)."""
        with self._db.write() as conn:
            if conn.execute(_REVOKE, (text(now()), token_id)).rowcount == 1:
                insert_events(self._db, conn, audit)
            return _token(conn.execute(_GET, (token_id,)).fetchone())

    def list_page(self, tenant_id: str, *, limit: int, next_token: str | None) -> tuple[list[StoredToken], str | None]:
        list_key = _list_key("tokens", tenant_id)
        with self._db.read() as conn:
            return read_page(
                conn,
                list_key,
                next_token,
                limit,
                (_LIST, _LIST_AFTER),
                (tenant_id,),
                _token,
                lambda t: (text(t.created_at), t.token_id),
            )
