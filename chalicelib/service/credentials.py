"""EST enrolment credentials: a username and a password a tenant administrator makes for a device (or
a batch of them), good for ``uses`` enrolments under one profile until it expires or is revoked.

The password is 256 random bits, shown once, and stored as its SHA-256 only. A fast hash is enough
for a secret of that entropy: nobody can search 2^256 candidates, however cheap each one is (slow
hashes such as scrypt or Argon2 exist to protect guessable, human-chosen passwords). It also keeps a
failed login as cheap as a successful one, so the route is no lever to burn the service's CPU.
Comparison is constant-time, and every refusal of a wrong username or password reads alike.

A use is taken (``consume``) atomically by the store when an enrolment is about to be signed, never
past ``uses`` even when a device's requests race; authenticating alone takes none.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta

from chalicelib.context import current
from chalicelib.domain import EnrolmentCredential
from chalicelib.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from chalicelib.service import audit
from chalicelib.service.ids import json_time

USERNAME_RE = re.compile(r"^estc_[0-9a-f]{20}$")
PROFILE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MAX_USES = 100_000
MIN_LIFETIME = timedelta(minutes=1)
MAX_LIFETIME = timedelta(days=366)
_DURATION_RE = re.compile(r"^([0-9]{1,9})([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_LABEL = 200
REALM = "SeaCat PKI EST"
_NO_SUCH = "the enrolment credential is not valid"


def _hash(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def parse_lifetime(value: object) -> timedelta:
    """``expiresIn``: whole seconds, or a string ``<n>s|m|h|d``; from a minute to 366 days."""
    if isinstance(value, bool):
        raise InvalidInput("must be whole seconds or a duration such as 30m, 12h, 7d", field="expiresIn")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and (match := _DURATION_RE.fullmatch(value.strip())):
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise InvalidInput("must be whole seconds or a duration such as 30m, 12h, 7d", field="expiresIn")
    # The range is checked on the number: timedelta() of a huge one raises OverflowError (a 500).
    if not MIN_LIFETIME.total_seconds() <= seconds <= MAX_LIFETIME.total_seconds():
        raise InvalidInput("must be from 1 minute to 366 days", field="expiresIn")
    return timedelta(seconds=seconds)


def create(
    tenant_id: str, profile: str, uses: int, lifetime: timedelta, label: str | None
) -> tuple[EnrolmentCredential, str]:
    """A new credential; returns it and its password (shown once, never stored)."""
    now = datetime.now(UTC)
    username = "estc_" + secrets.token_hex(10)
    password = secrets.token_urlsafe(32)
    credential = EnrolmentCredential(
        tenant_id=tenant_id,
        username=username,
        secret_hash=_hash(password),
        profile=profile,
        uses=uses,
        uses_left=uses,
        expires_at=now + lifetime,
        created_at=now,
        label=label,
    )
    event = audit.entry(
        "est_credential.created",
        tenant_id,
        username,
        "created",
        {"profile": profile, "uses": uses, "expiresAt": credential.expires_at.isoformat(), "label": label},
    )
    current().credentials.create(credential, [event])
    return credential, password


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(username, password) of an ``Authorization: Basic`` header; None without one."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    value = value.strip()
    if not value or len(value) > 512:
        raise Unauthenticated(_NO_SUCH)
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise Unauthenticated(_NO_SUCH) from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthenticated(_NO_SUCH)
    return username, password


def authenticate(tenant_id: str, username: str, password: str, now: datetime) -> EnrolmentCredential:
    """The tenant's credential for this username and password, not revoked and not expired (its uses
    are ``consume``'s to check); Unauthenticated (401) otherwise, the same answer for a wrong username
    and a wrong password."""
    stored = current().credentials.get(tenant_id, username) if USERNAME_RE.fullmatch(username) else None
    expected = stored.secret_hash if stored is not None else _hash("")  # compare anyway: timing tells nothing
    if not hmac.compare_digest(_hash(password), expected) or stored is None:
        raise Unauthenticated(_NO_SUCH)
    if stored.revoked_at is not None:
        raise Unauthenticated("the enrolment credential was revoked")
    if now >= stored.expires_at:
        raise Unauthenticated("the enrolment credential has expired")
    return stored


def consume(credential: EnrolmentCredential, now: datetime, request_id: str) -> EnrolmentCredential:
    """Take one use of ``credential`` for the request ``request_id``; Forbidden (403) when none is left
    (or it was revoked or expired meanwhile)."""
    event = audit.entry(
        "est_credential.used",
        credential.tenant_id,
        credential.username,
        "used",
        {"profile": credential.profile, "request": request_id, "usesLeft": credential.uses_left - 1},
        actor=f"est:{credential.username}",
    )
    used = current().credentials.consume(credential.tenant_id, credential.username, now, [event])
    if used is None:
        raise Forbidden("the enrolment credential has no use left")
    return used


def list_page(tenant_id: str, limit: int, next_token: str | None) -> tuple[list[EnrolmentCredential], str | None]:
    return current().credentials.list_page(tenant_id, limit=limit, next_token=next_token)


def get(tenant_id: str, username: str) -> EnrolmentCredential:
    found = current().credentials.get(tenant_id, username) if USERNAME_RE.fullmatch(username) else None
    if found is None:
        raise NotFound("no such enrolment credential", field="username")
    return found


def revoke(tenant_id: str, username: str) -> EnrolmentCredential:
    stored = get(tenant_id, username)
    if stored.revoked_at is None:
        event = audit.entry("est_credential.revoked", tenant_id, username, "revoked", {"profile": stored.profile})
        revoked = current().credentials.revoke(tenant_id, username, [event])
        if revoked is None:
            raise NotFound("no such enrolment credential", field="username")
        stored = revoked
    return stored


def to_json(c: EnrolmentCredential, now: datetime | None = None) -> dict[str, object]:
    """The shown form: never the password nor its hash."""
    now = now or datetime.now(UTC)
    state = (
        "revoked" if c.revoked_at else "expired" if now >= c.expires_at else "used" if c.uses_left <= 0 else "active"
    )
    return {
        "username": c.username,
        "tenant": c.tenant_id,
        "profile": c.profile,
        "uses": c.uses,
        "usesLeft": c.uses_left,
        "expiresAt": json_time(c.expires_at),
        "createdAt": json_time(c.created_at),
        "lastUsedAt": json_time(c.last_used_at),
        "revokedAt": json_time(c.revoked_at),
        "label": c.label,
        "state": state,
    }
