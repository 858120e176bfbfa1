"""Admin authentication: operator and tenant-scoped bearer tokens.

A token reads ``sct_<id>_<secret>``; only SHA-256 of the whole token is stored, under its id,
and the comparison is constant-time. An operator token given by the environment
(SEACAT_ADMIN_TOKEN) may be any string: it is stored under the reserved id ``operator``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta

from chalicelib.context import current
from chalicelib.domain import Principal, StoredToken
from chalicelib.errors import NotFound, Unauthenticated
from chalicelib.service import audit
from chalicelib.service.ids import json_time

OPERATOR_ID = "operator"
_TOKEN_RE = re.compile(r"^sct_([0-9a-f]{16})_[A-Za-z0-9_-]{20,100}$")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_id_of(token: str) -> str:
    match = _TOKEN_RE.match(token)
    return match.group(1) if match else OPERATOR_ID


def authenticate(authorization: str | None) -> Principal:
    if not authorization:
        raise Unauthenticated("an Authorization: Bearer <token> header is required")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 512:
        raise Unauthenticated("an Authorization: Bearer <token> header is required")
    stored = current().tokens.get(token_id_of(token))
    # Compare even when nothing is stored, so timing does not tell which ids exist.
    expected = stored.token_hash if stored is not None else _hash("")
    if not hmac.compare_digest(_hash(token), expected) or stored is None or stored.revoked_at is not None:
        raise Unauthenticated("the token is not valid")
    if stored.expires_at is not None and datetime.now(UTC) >= stored.expires_at:
        # Its holder knows the token already: saying it expired tells them nothing more.
        raise Unauthenticated("the token has expired")
    return Principal(token_id=stored.token_id, tenant_id=stored.tenant_id)


def issue(
    tenant_id: str | None, label: str | None = None, lifetime: timedelta | None = None
) -> tuple[StoredToken, str]:
    """Create a token; returns what is stored of it and the token, which is shown once and never
    stored. ``lifetime``: it expires that long from now; None: it works until revoked."""
    token_id = secrets.token_hex(8)
    token = f"sct_{token_id}_{secrets.token_urlsafe(32)}"
    now = datetime.now(UTC)
    expires_at = None if lifetime is None else now.replace(microsecond=0) + lifetime
    details: dict[str, object] = {"label": label}
    if expires_at is not None:
        details["expiresAt"] = json_time(expires_at)
    event = audit.entry("token.created", tenant_id, token_id, "created", details)
    current().tokens.put(token_id, _hash(token), tenant_id, label, created_at=now, expires_at=expires_at, audit=[event])
    return StoredToken(token_id, _hash(token), tenant_id, now, None, label, expires_at), token


def to_json(token: StoredToken, now: datetime | None = None) -> dict[str, object]:
    """What an administrator may see of a token: never its secret or its hash."""
    return {
        "tokenId": token.token_id,
        "tenant": token.tenant_id,
        "label": token.label,
        "createdAt": json_time(token.created_at),
        "expiresAt": json_time(token.expires_at),
        "revokedAt": json_time(token.revoked_at),
        "state": token.state(now or datetime.now(UTC)),
    }


def list_page(tenant_id: str, limit: int, next_token: str | None) -> tuple[list[StoredToken], str | None]:
    """The tenant's admin tokens, newest first (revoked and expired ones too: they are its history)."""
    return current().tokens.list_page(tenant_id, limit=limit, next_token=next_token)


def install_operator_token(token: str) -> str:
    """Make ``token`` an operator token (local run and first-time bootstrap); returns its id."""
    token_id = token_id_of(token)
    event = audit.entry(
        "token.created", None, token_id, "operator", {"label": "operator (bootstrap)"}, actor="bootstrap"
    )
    current().tokens.put(token_id, _hash(token), None, "operator (bootstrap)", overwrite=True, audit=[event])
    return token_id


def revoke(token_id: str) -> dict[str, object]:
    if not re.fullmatch(r"[0-9a-f]{16}|operator", token_id):
        raise NotFound(f"no token {token_id}", field="tokenId")
    store = current().tokens
    stored = store.get(token_id)
    if stored is not None and stored.revoked_at is None:
        stored = store.revoke(token_id, [audit.entry("token.revoked", stored.tenant_id, token_id, "revoked")])
    if stored is None:
        raise NotFound(f"no token {token_id}", field="tokenId")
    return {
        "tokenId": stored.token_id,
        "tenant": stored.tenant_id,
        "revoked": True,
    }
