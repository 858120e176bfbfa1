"""Admin bearer tokens, stored as SHA-256 hashes only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.transactions import TransactWrite

from chalicelib.domain import StoredToken
from chalicelib.store import common
from chalicelib.store.models import TokenModel

# A tenant's admin tokens in the credential index (sparse, shared with EST credentials, whose key is
# the bare tenant id: a tenant id never holds ':'). Tokens made before this key existed are not listed.
_LIST_PREFIX = "admin:"


def _stored(item: TokenModel) -> StoredToken:
    return StoredToken(
        token_id=item.token_id,
        token_hash=item.token_hash,
        tenant_id=item.tenant_id,
        created_at=item.created_at,
        revoked_at=item.revoked_at,
        label=item.label,
        expires_at=item.expires_at,
    )


def get(token_id: str) -> StoredToken | None:
    common.ready()
    with common.translated():
        try:
            item = TokenModel.get(token_id, consistent_read=True)
        except DoesNotExist:
            return None
        # An EST enrolment credential in the same table is never an admin token.
        return _stored(item) if item.kind is None else None


def put(
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
    common.ready()
    item = TokenModel(
        token_id,
        token_hash=token_hash,
        tenant_id=tenant_id,
        label=label,
        created_at=created_at or common.now(),
        expires_at=expires_at,
        credential_key=None if tenant_id is None else _LIST_PREFIX + tenant_id,
    )
    with common.translated("token id already in use"):
        with TransactWrite(connection=common.connection()) as tx:
            tx.save(item, condition=None if overwrite else TokenModel.token_id.does_not_exist())
            common.save_all(tx, audit)


def revoke(token_id: str, audit: Sequence[Any] = ()) -> StoredToken | None:
    """Revoke once; revoking again answers the recorded state (and writes no event)."""
    common.ready()
    with common.translated():
        try:
            item = TokenModel.get(token_id, consistent_read=True)
        except DoesNotExist:
            return None
        if item.revoked_at is None:
            with TransactWrite(connection=common.connection()) as tx:
                tx.update(
                    item,
                    actions=[TokenModel.revoked_at.set(common.now())],
                    condition=TokenModel.revoked_at.does_not_exist(),
                )
                common.save_all(tx, audit)
            item = TokenModel.get(token_id, consistent_read=True)
        return _stored(item)


def list_page(tenant_id: str, *, limit: int, next_token: str | None) -> tuple[list[StoredToken], str | None]:
    common.ready()
    key = _LIST_PREFIX + tenant_id
    start = common.decode_page_token(next_token, {"credential_key": key, "token_id": "", "created_at": ""})
    with common.translated():
        result = TokenModel.by_credential.query(key, scan_index_forward=False, limit=limit, last_evaluated_key=start)
        items = [_stored(i) for i in result if i.kind is None]
        return items, common.encode_page_token(result.last_evaluated_key)


def index_unlisted() -> int:
    """Give the tenant tokens made before the list existed (no credential_key) their key, so that
    ``list_page`` finds them; returns how many. A one-off after the upgrade, with the operator's AWS
    credentials (it scans the table, which the service role may not). Idempotent."""
    from pynamodb.exceptions import UpdateError

    common.ready()
    done = 0
    unlisted = (
        TokenModel.credential_key.does_not_exist() & TokenModel.kind.does_not_exist() & TokenModel.tenant_id.exists()
    )
    with common.translated():
        for item in TokenModel.scan(unlisted):
            assert item.tenant_id is not None  # the scan's condition
            try:
                item.update(
                    actions=[TokenModel.credential_key.set(_LIST_PREFIX + item.tenant_id)],
                    condition=TokenModel.credential_key.does_not_exist(),
                )
            except UpdateError as exc:
                if not common.is_conditional_failure(exc):
                    raise
                continue  # given its key meanwhile
            done += 1
    return done
