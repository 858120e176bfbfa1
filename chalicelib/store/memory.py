"""In-memory implementations of the storage ports, for unit tests and benchmarks.

Same contract as the DynamoDB store: the same conditions raise the same Conflict, versions move
the same way, pages come with opaque tokens. One lock makes each call atomic, as a DynamoDB
transaction is.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.domain import (
    AuditEvent,
    CaCert,
    CaState,
    CertificateRecord,
    EnrolmentCredential,
    IdentityRecord,
    RequestRecord,
    StoredToken,
    Tenant,
    TenantConfig,
)
from chalicelib.errors import Conflict, InvalidInput, SecretAlreadyExists, Unavailable
from chalicelib.store import keys


def _now() -> datetime:
    return datetime.now(UTC)


def _sort_time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _page_token(list_key: str, after: tuple[str, str]) -> str:
    raw = json.dumps({"list": list_key, "after": list(after)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _page_after(token: str, list_key: str) -> tuple[str, str]:
    """The sort key a token of this list resumes after, or 400 naming ``next`` (another list's too)."""
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:  # not base64 (binascii.Error), not UTF-8, not JSON
        state = None
    after = state.get("after") if isinstance(state, dict) and state.get("list") == list_key else None
    if not (isinstance(after, list) and len(after) == 2 and all(isinstance(k, str) for k in after)):
        raise InvalidInput("not a page token of this list", field="next")
    if _page_token(list_key, (after[0], after[1])) != token:
        raise InvalidInput("not a page token of this list", field="next")
    return after[0], after[1]


def _page(
    items: list[tuple[tuple[str, str], Any]], list_key: str, limit: int, next_token: str | None, *, newest_first: bool
) -> tuple[list[Any], str | None]:
    """A page of (sort key, item) pairs in sort-key order. As a DynamoDB query resumes after its
    last evaluated key, a page resumes after the previous page's last key (never at an offset that
    an item written or removed meanwhile would shift), and a token names its list."""
    items = sorted(items, key=lambda pair: pair[0], reverse=newest_first)
    if next_token:
        after = _page_after(next_token, list_key)
        items = [pair for pair in items if (pair[0] < after if newest_first else pair[0] > after)]
    page = items[:limit]
    return [item for _, item in page], (_page_token(list_key, page[-1][0]) if len(items) > limit else None)


class _Shared:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.audit: list[AuditEvent] = []

    def record(self, entries: Sequence[Any]) -> None:
        self.audit.extend(entries)


class MemoryTenants:
    def __init__(self, shared: _Shared, certificates: MemoryCertificates) -> None:
        self._s = shared
        self._certs = certificates
        self.items: dict[str, Tenant] = {}

    def get(self, tenant_id: str, *, consistent: bool = True) -> Tenant | None:
        with self._s.lock:
            return self.items.get(tenant_id)

    def ids(self) -> list[str]:
        with self._s.lock:
            return sorted(self.items)

    def create(
        self,
        tenant_id: str,
        config: TenantConfig,
        key_secret: str,
        key_fingerprint: str,
        imported: bool,
        audit: Sequence[Any] = (),
    ) -> Tenant:
        with self._s.lock:
            if tenant_id in self.items:
                raise Conflict(f"tenant {tenant_id} was created concurrently")
            now = _now()
            tenant = Tenant(tenant_id, config, key_secret, key_fingerprint, imported, (), None, now, now, 1)
            self.items[tenant_id] = tenant
            self._s.record(audit)
            return tenant

    def update_config(self, tenant: Tenant, config: TenantConfig, audit: Sequence[Any] = ()) -> Tenant:
        with self._s.lock:
            current = self.items.get(tenant.tenant_id)
            if current is None or current.version != tenant.version:
                raise Conflict(f"tenant {tenant.tenant_id} was changed concurrently, retry")
            fresh = replace(current, config=config, modified_at=_now(), version=current.version + 1)
            self.items[tenant.tenant_id] = fresh
            self._s.record(audit)
            return fresh

    def add_ca(
        self, tenant: Tenant, record: CertificateRecord, audit: Sequence[Any] = (), *, key_secret: str | None = None
    ) -> None:
        with self._s.lock:
            current = self.items.get(tenant.tenant_id)
            key = (record.tenant_id, record.cert_id)
            if current is None or current.version != tenant.version or key in self._certs.certs:
                raise Conflict(f"tenant {tenant.tenant_id} was changed concurrently, retry")
            self._certs.certs[key] = record
            self.items[tenant.tenant_id] = replace(
                current,
                cas=current.cas + (CaCert(record.cert_id, record.der, record.created_at, key_secret),),
                active_ca=record.cert_id,
                modified_at=record.created_at,
                version=current.version + 1,
            )
            self._s.record(audit)

    def set_ca_states(
        self,
        tenant: Tenant,
        states: Mapping[str, CaState],
        audit: Sequence[Any] = (),
        *,
        final_crls: Mapping[str, bytes] | None = None,
    ) -> Tenant:
        with self._s.lock:
            current = self.items.get(tenant.tenant_id)
            if current is None or current.version != tenant.version:
                raise Conflict(f"tenant {tenant.tenant_id} was changed concurrently, retry")
            known = {ca.cert_id for ca in current.cas}
            crls = dict(final_crls or {})
            if not set(states) <= known or not set(crls) <= known:
                raise Conflict(f"tenant {tenant.tenant_id} has no such CA certificate")
            now = _now()
            cas = tuple(
                replace(ca, state=states[ca.cert_id], state_at=now) if ca.cert_id in states else ca
                for ca in current.cas
            )
            for cert_id, der in crls.items():
                ca_record = self._certs.certs[(tenant.tenant_id, cert_id)]
                self._certs.certs[(tenant.tenant_id, cert_id)] = replace(
                    ca_record, final_crl=bytes(der), modified_at=now
                )
            fresh = replace(
                current,
                cas=cas,
                active_ca=None if current.active_ca in states else current.active_ca,
                modified_at=now,
                version=current.version + 1,
            )
            self.items[tenant.tenant_id] = fresh
            self._s.record(audit)
            return fresh


class MemoryTokens:
    def __init__(self, shared: _Shared) -> None:
        self._s = shared
        self.items: dict[str, StoredToken] = {}

    def get(self, token_id: str) -> StoredToken | None:
        with self._s.lock:
            return self.items.get(token_id)

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
        with self._s.lock:
            if not overwrite and token_id in self.items:
                raise Conflict("token id already in use")
            at = created_at or _now()
            self.items[token_id] = StoredToken(token_id, token_hash, tenant_id, at, None, label, expires_at)
            self._s.record(audit)

    def list_page(self, tenant_id: str, *, limit: int, next_token: str | None) -> tuple[list[StoredToken], str | None]:
        with self._s.lock:
            mine = [
                ((_sort_time(t.created_at), t.token_id), t) for t in self.items.values() if t.tenant_id == tenant_id
            ]
        return _page(mine, f"tokens#{tenant_id}", limit, next_token, newest_first=True)

    def revoke(self, token_id: str, audit: Sequence[Any] = ()) -> StoredToken | None:
        with self._s.lock:
            token = self.items.get(token_id)
            if token is not None and token.revoked_at is None:
                token = self.items[token_id] = replace(token, revoked_at=_now())
                self._s.record(audit)
            return token


class MemoryCredentials:
    """EST enrolment credentials; the lock makes consume's check and decrement one step."""

    def __init__(self, shared: _Shared) -> None:
        self._s = shared
        self.items: dict[tuple[str, str], EnrolmentCredential] = {}

    def create(self, credential: EnrolmentCredential, audit: Sequence[Any] = ()) -> None:
        with self._s.lock:
            if any(username == credential.username for _, username in self.items):
                raise Conflict("username already in use")
            self.items[(credential.tenant_id, credential.username)] = credential
            self._s.record(audit)

    def get(self, tenant_id: str, username: str) -> EnrolmentCredential | None:
        with self._s.lock:
            return self.items.get((tenant_id, username))

    def list_page(
        self, tenant_id: str, *, limit: int, next_token: str | None
    ) -> tuple[list[EnrolmentCredential], str | None]:
        with self._s.lock:
            mine = [((_sort_time(c.created_at), c.username), c) for (t, _), c in self.items.items() if t == tenant_id]
        return _page(mine, f"credentials#{tenant_id}", limit, next_token, newest_first=True)

    def consume(
        self, tenant_id: str, username: str, now: datetime, audit: Sequence[Any] = ()
    ) -> EnrolmentCredential | None:
        with self._s.lock:
            credential = self.items.get((tenant_id, username))
            if credential is None or not credential.usable(now):
                return None
            credential = self.items[(tenant_id, username)] = replace(
                credential, uses_left=credential.uses_left - 1, last_used_at=now
            )
            self._s.record(audit)
            return credential

    def revoke(self, tenant_id: str, username: str, audit: Sequence[Any] = ()) -> EnrolmentCredential | None:
        with self._s.lock:
            credential = self.items.get((tenant_id, username))
            if credential is not None and credential.revoked_at is None:
                credential = self.items[(tenant_id, username)] = replace(credential, revoked_at=_now())
                self._s.record(audit)
            return credential


class MemoryCertificates:
    def __init__(self, shared: _Shared) -> None:
        self._s = shared
        self.certs: dict[tuple[str, str], CertificateRecord] = {}
        self.serials: dict[tuple[str, int], str] = {}  # (tenant, serial) -> cert_id: the serial claims
        self.identities: dict[tuple[str, str], IdentityRecord] = {}
        self.requests: dict[tuple[str, str], RequestRecord] = {}

    def get_certificate(self, tenant_id: str, cert_id: str) -> CertificateRecord | None:
        with self._s.lock:
            return self.certs.get((tenant_id, cert_id))

    def get_certificate_by_serial(self, tenant_id: str, serial: int) -> CertificateRecord | None:
        with self._s.lock:
            cert_id = self.serials.get((tenant_id, serial))
            return self.certs.get((tenant_id, cert_id)) if cert_id is not None else None

    def list_identity_certificates(
        self, tenant_id: str, identity: str, *, limit: int, next_token: str | None
    ) -> tuple[list[CertificateRecord], str | None]:
        with self._s.lock:
            mine = [
                ((_sort_time(c.created_at), c.cert_id), c)
                for (t, _), c in self.certs.items()
                if t == tenant_id and c.identity == identity
            ]
        return _page(mine, f"certificates#{tenant_id}#{identity}", limit, next_token, newest_first=True)

    def get_identity(self, tenant_id: str, identity: str) -> IdentityRecord | None:
        with self._s.lock:
            return self.identities.get((tenant_id, identity))

    def _put_identity(self, record: IdentityRecord, modified_at: datetime | None = None) -> IdentityRecord:
        key = (record.tenant_id, record.identity)
        current = self.identities.get(key)
        if (current.version if current else 0) != record.version:
            raise Conflict(f"identity {record.identity} was changed concurrently, retry")
        stored = replace(record, version=record.version + 1, modified_at=modified_at or _now())
        self.identities[key] = stored
        return stored

    def save_identity(self, record: IdentityRecord, audit: Sequence[Any] = ()) -> IdentityRecord:
        with self._s.lock:
            stored = self._put_identity(record)
            self._s.record(audit)
            return stored

    def get_request(self, tenant_id: str, cr_id: str) -> RequestRecord | None:
        with self._s.lock:
            return self.requests.get((tenant_id, cr_id))

    def save_request(self, record: RequestRecord, audit: Sequence[Any] = ()) -> RequestRecord:
        with self._s.lock:
            stored = replace(record, version=record.version + 1, modified_at=_now())
            self.requests[(record.tenant_id, record.cr_id)] = stored
            self._s.record(audit)
            return stored

    def list_pending(
        self, tenant_id: str, *, limit: int, next_token: str | None
    ) -> tuple[list[RequestRecord], str | None]:
        with self._s.lock:
            pending = [
                ((_sort_time(r.created_at), r.cr_id), r)
                for (t, _), r in self.requests.items()
                if t == tenant_id and r.state == "pending"
            ]
        return _page(pending, f"pending#{tenant_id}", limit, next_token, newest_first=False)

    def decide(self, request: RequestRecord, identity: IdentityRecord, audit: Sequence[Any] = ()) -> None:
        with self._s.lock:
            current = self.requests.get((request.tenant_id, request.cr_id))
            if current is None or current.state != "pending":
                raise Conflict("the request was decided concurrently")
            now = _now()
            self._put_identity(identity, now)
            self.requests[(request.tenant_id, request.cr_id)] = replace(
                request, version=request.version + 1, modified_at=now
            )
            self._s.record(audit)

    def store_issued(
        self, cert: CertificateRecord, identity: IdentityRecord, request: RequestRecord, audit: Sequence[Any] = ()
    ) -> None:
        with self._s.lock:
            key = (cert.tenant_id, cert.cert_id)
            serial = (cert.tenant_id, cert.serial)
            current = self.identities.get((identity.tenant_id, identity.identity))
            if key in self.certs or serial in self.serials or (current.version if current else 0) != identity.version:
                raise Conflict("a concurrent request changed this identity")
            self.certs[key] = cert
            self.serials[serial] = cert.cert_id
            self._put_identity(identity, identity.modified_at)  # as given, as DynamoDB stores it
            self.requests[(request.tenant_id, request.cr_id)] = replace(request, version=request.version + 1)
            self._s.record(audit)

    def revoke(
        self, cert: CertificateRecord, reason: str, identity: IdentityRecord | None, audit: Sequence[Any] = ()
    ) -> None:
        with self._s.lock:
            key = (cert.tenant_id, cert.cert_id)
            current = self.certs.get(key)
            ikey = (identity.tenant_id, identity.identity) if identity is not None else None
            stored = self.identities.get(ikey) if ikey is not None else None
            # An identity named must exist (DynamoDB's condition), or nothing is written.
            if current is None or current.revoked_at is not None or (ikey is not None and stored is None):
                raise Conflict("the certificate was revoked concurrently")
            now = _now()
            self.certs[key] = replace(
                current, revoked_at=now, revocation_reason=reason, modified_at=now, version=current.version + 1
            )
            if ikey is not None and stored is not None:
                self.identities[ikey] = replace(
                    stored,
                    revoked_serials=stored.revoked_serials | {cert.serial},
                    modified_at=now,
                    version=stored.version + 1,
                )
            self._s.record(audit)

    def iter_revoked(
        self, tenant_id: str, *, page_size: int | None = None
    ) -> Iterator[tuple[int, datetime, str, datetime, str | None]]:
        with self._s.lock:
            revoked = [c for (t, _), c in self.certs.items() if t == tenant_id and c.revoked_at is not None]
        for c in revoked:
            assert c.revoked_at is not None
            yield c.serial, c.revoked_at, c.revocation_reason or "unspecified", c.not_after, c.ca_id

    def count_by_ca(self, tenant_id: str, ca_id: str, now: datetime) -> int:
        with self._s.lock:
            return sum(
                1
                for (t, _), c in self.certs.items()
                if t == tenant_id and c.ca_id == ca_id and c.not_after > now and c.revoked_at is None
            )


class MemoryAudit:
    def __init__(self, shared: _Shared) -> None:
        self._s = shared

    def item(
        self,
        tenant: str | None,
        event: str,
        actor: str,
        subject: str | None = None,
        outcome: str | None = None,
        details: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditEvent:
        return keys.audit_event(tenant, event, actor, subject, outcome, details, at)

    def put(self, entry: Any) -> None:
        with self._s.lock:
            self._s.record([entry])

    def query(
        self, tenant: str | None, start: datetime, end: datetime, event: str | None, limit: int, next_token: str | None
    ) -> tuple[list[AuditEvent], str | None]:
        # The DynamoDB store's range and tokens: a page resumes below a sort key, not at an offset
        # that an event written meanwhile would shift.
        lower, upper = keys.bounds(start, end, next_token)
        with self._s.lock:
            found = [
                (key, e)
                for e in self._s.audit
                if e.tenant == tenant
                and (event is None or e.event == event)
                and lower <= (key := keys.sort_key(e.at, e.event_id)) < upper
            ]
        found.sort(key=lambda pair: pair[0], reverse=True)
        token = keys.page_token(found[limit - 1][0]) if len(found) > limit else None
        return [e for _, e in found[:limit]], token


class MemoryKeyStore:
    def __init__(self, shared: _Shared) -> None:
        self._s = shared
        self.keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self.secrets: dict[str, bytes] = {}
        self.deletions: dict[str, datetime] = {}  # secret name -> when it will be deleted

    def secret_name(self, tenant_id: str, fingerprint: str | None = None) -> str:
        return f"memory/{tenant_id}/ca-key" + (f"-{fingerprint[:16]}" if fingerprint else "")

    def create(self, tenant_id: str, key: ec.EllipticCurvePrivateKey, *, name: str | None = None) -> str:
        name = name or self.secret_name(tenant_id)
        with self._s.lock:
            if name in self.keys:
                raise SecretAlreadyExists(name)
            self.keys[name] = key
        return name

    def load(self, name: str) -> ec.EllipticCurvePrivateKey:
        with self._s.lock:
            if name in self.deletions:  # as Secrets Manager refuses a secret marked for deletion
                raise Unavailable("the key store is not available")
            return self.keys[name]

    def schedule_deletion(self, name: str, recovery_days: int) -> bool:
        """The secret stays (restorable) until the window ends, but can no longer be loaded."""
        if "/ca-key" not in name:
            raise ValueError("only CA key secrets are deleted here")
        if not 7 <= recovery_days <= 30:
            raise ValueError("the recovery window is 7 to 30 days")
        with self._s.lock:
            if name not in self.keys or name in self.deletions:
                return False
            self.deletions[name] = _now() + timedelta(days=recovery_days)
            return True

    def put_secret(self, tenant_id: str, kind: str, value: bytes, *, replace: bool) -> str:
        from chalicelib.keystore import replaceable_kind

        if not replaceable_kind(kind):
            raise ValueError(f"not a kind of tenant secret: {kind}")
        name = f"memory/{tenant_id}/{kind}"
        with self._s.lock:
            if name in self.secrets and not replace:
                raise SecretAlreadyExists(name)
            self.secrets[name] = bytes(value)
        return name

    def load_secret(self, tenant_id: str, kind: str) -> bytes | None:
        with self._s.lock:
            return self.secrets.get(f"memory/{tenant_id}/{kind}")


@dataclass
class MemoryBackend:
    """Every port, in memory, sharing one lock and one audit list."""

    shared: _Shared
    certificates: MemoryCertificates
    tenants: MemoryTenants
    tokens: MemoryTokens
    credentials: MemoryCredentials
    audit: MemoryAudit
    keystore: MemoryKeyStore

    def __init__(self) -> None:
        self.shared = _Shared()
        self.certificates = MemoryCertificates(self.shared)
        self.tenants = MemoryTenants(self.shared, self.certificates)
        self.tokens = MemoryTokens(self.shared)
        self.credentials = MemoryCredentials(self.shared)
        self.audit = MemoryAudit(self.shared)
        self.keystore = MemoryKeyStore(self.shared)
