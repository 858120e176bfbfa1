"""EST enrolment credentials on DynamoDB, in the tokens table (kind ``est``, token_id = the username):
the same shape as an admin token, a secret's SHA-256 under an id, plus the uses left and the expiry.
The sparse ``credential-index`` (credential_key = the tenant) lists a tenant's, newest first.

A use is taken by a conditional write guarded by the count read (and by revocation and expiry), in a
transaction with its audit entry: concurrent enrolments never take more than ``uses``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.transactions import TransactWrite

from chalicelib.domain import EnrolmentCredential
from chalicelib.errors import Conflict, Unavailable
from chalicelib.store import common
from chalicelib.store.models import TokenModel

KIND = "est"


def _credential(item: TokenModel) -> EnrolmentCredential:
    assert item.tenant_id is not None and item.profile is not None and item.expires_at is not None
    return EnrolmentCredential(
        tenant_id=item.tenant_id,
        username=item.token_id,
        secret_hash=item.token_hash,
        profile=item.profile,
        uses=int(item.uses or 0),
        uses_left=int(item.uses_left or 0),
        expires_at=item.expires_at,
        created_at=item.created_at,
        revoked_at=item.revoked_at,
        label=item.label,
        last_used_at=item.last_used_at,
    )


def _read(tenant_id: str, username: str) -> TokenModel | None:
    try:
        item = TokenModel.get(username, consistent_read=True)
    except DoesNotExist:
        return None
    return item if item.kind == KIND and item.tenant_id == tenant_id else None


def create(credential: EnrolmentCredential, audit: Sequence[Any] = ()) -> None:
    common.ready()
    c = credential
    item = TokenModel(
        c.username,
        token_hash=c.secret_hash,
        tenant_id=c.tenant_id,
        label=c.label,
        created_at=c.created_at,
        kind=KIND,
        credential_key=c.tenant_id,
        profile=c.profile,
        uses=c.uses,
        uses_left=c.uses_left,
        expires_at=c.expires_at,
    )
    with common.translated("username already in use"):
        with TransactWrite(connection=common.connection()) as tx:
            tx.save(item, condition=TokenModel.token_id.does_not_exist())
            common.save_all(tx, audit)


def get(tenant_id: str, username: str) -> EnrolmentCredential | None:
    common.ready()
    with common.translated():
        item = _read(tenant_id, username)
        return _credential(item) if item is not None else None


def list_page(tenant_id: str, *, limit: int, next_token: str | None) -> tuple[list[EnrolmentCredential], str | None]:
    common.ready()
    start = common.decode_page_token(next_token, {"credential_key": tenant_id, "token_id": "", "created_at": ""})
    with common.translated():
        result = TokenModel.by_credential.query(
            tenant_id, scan_index_forward=False, limit=limit, last_evaluated_key=start
        )
        items = [_credential(i) for i in result]
        return items, common.encode_page_token(result.last_evaluated_key)


# Racing consumers each lose at most once per use another one took: bounded by the uses, and by this.
_CONSUME_ATTEMPTS = 20


def consume(tenant_id: str, username: str, now: datetime, audit: Sequence[Any] = ()) -> EnrolmentCredential | None:
    """Optimistic: read, then one conditional write of ``uses_left - 1`` guarded by the value read (and
    by revocation and expiry), with its audit entries; a lost race reads again. So the answer is the
    exact state this use left, and no two callers ever take the same use."""
    common.ready()
    for _ in range(_CONSUME_ATTEMPTS):
        with common.translated():
            item = _read(tenant_id, username)
        if item is None:
            return None
        found = _credential(item)
        if not found.usable(now):
            return None
        condition = (
            (TokenModel.kind == KIND)
            & (TokenModel.tenant_id == tenant_id)
            & TokenModel.revoked_at.does_not_exist()
            & (TokenModel.uses_left == found.uses_left)
            & (TokenModel.expires_at > now)
        )
        try:
            with common.translated("no use left"):
                with TransactWrite(connection=common.connection()) as tx:
                    tx.update(
                        item,
                        actions=[TokenModel.uses_left.set(found.uses_left - 1), TokenModel.last_used_at.set(now)],
                        condition=condition,
                    )
                    common.save_all(tx, audit)
        except Conflict:
            continue  # another use (or a revocation) came first: read again
        return replace(found, uses_left=found.uses_left - 1, last_used_at=now)
    raise Unavailable("the credential is being used concurrently, retry")


def revoke(tenant_id: str, username: str, audit: Sequence[Any] = ()) -> EnrolmentCredential | None:
    """Revoke once; revoking again answers the recorded state (and writes no event)."""
    common.ready()
    with common.translated():
        item = _read(tenant_id, username)
        if item is None:
            return None
        if item.revoked_at is None:
            try:
                with TransactWrite(connection=common.connection()) as tx:
                    tx.update(
                        item,
                        actions=[TokenModel.revoked_at.set(common.now())],
                        condition=TokenModel.revoked_at.does_not_exist(),
                    )
                    common.save_all(tx, audit)
            except Exception as exc:  # revoked meanwhile: answer the recorded state
                from pynamodb.exceptions import PynamoDBException

                if not (isinstance(exc, PynamoDBException) and common.is_conditional_failure(exc)):
                    raise
            item = _read(tenant_id, username)
        return _credential(item) if item is not None else None
