"""The storage ports the services use. The DynamoDB store modules and the in-memory store
(chalicelib/store/memory.py) both implement them; chalicelib/context.py builds the context that holds one of each.

Audit entries are opaque values made by ``AuditStore.item`` and handed to the write they record,
so they are committed in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.domain import (
    AuditEvent,
    CaState,
    CertificateRecord,
    EnrolmentCredential,
    IdentityRecord,
    RequestRecord,
    StoredToken,
    Tenant,
    TenantConfig,
)


class TenantStore(Protocol):
    def get(self, tenant_id: str, *, consistent: bool = True) -> Tenant | None: ...

    def ids(self) -> list[str]:
        """Every tenant's id, sorted (the operator's list: a deployment has tens of tenants, not millions)."""
        ...

    def create(
        self,
        tenant_id: str,
        config: TenantConfig,
        key_secret: str,
        key_fingerprint: str,
        imported: bool,
        audit: Sequence[Any] = (),
    ) -> Tenant: ...

    def update_config(self, tenant: Tenant, config: TenantConfig, audit: Sequence[Any] = ()) -> Tenant: ...

    def add_ca(
        self, tenant: Tenant, record: CertificateRecord, audit: Sequence[Any] = (), *, key_secret: str | None = None
    ) -> None:
        """Store a new CA certificate (``record``) over the key in secret ``key_secret`` (None: the tenant's
        first key) and make it the tenant's active CA, atomically: the entry is appended as TRUSTED, the
        tenant's ``active_ca`` names it. Conflict if the tenant moved since ``tenant`` was read, or the
        certificate id is in use."""
        ...

    def set_ca_states(
        self,
        tenant: Tenant,
        states: Mapping[str, CaState],
        audit: Sequence[Any] = (),
        *,
        final_crls: Mapping[str, bytes] | None = None,
    ) -> Tenant:
        """Set the stored state (RETIRED or REVOKED) of the tenant's CA certificates named in ``states``,
        with ``state_at`` = now; ``active_ca`` becomes None if it is among them. ``final_crls`` (CA
        certificate id -> DER) are stored on those CA certificates' records (``final_crl``, and their
        ``modified_at`` moves). One atomic
        write, guarded by the version ``tenant`` was read at (Conflict otherwise, nothing written).
        Returns the tenant as stored."""
        ...


class TokenStore(Protocol):
    def get(self, token_id: str) -> StoredToken | None: ...

    def put(
        self,
        token_id: str,
        token_hash: str,
        tenant_id: str | None,
        label: str | None,
        *,
        overwrite: bool = False,
        created_at: datetime | None = None,  # None: now
        expires_at: datetime | None = None,
        audit: Sequence[Any] = (),
    ) -> None: ...

    def revoke(self, token_id: str, audit: Sequence[Any] = ()) -> StoredToken | None: ...

    def list_page(self, tenant_id: str, *, limit: int, next_token: str | None) -> tuple[list[StoredToken], str | None]:
        """The tenant's admin tokens (not operator tokens), newest first, paged."""
        ...


class CredentialStore(Protocol):
    """EST enrolment credentials. Keys start with the tenant as everywhere: a credential of another
    tenant reads as absent."""

    def create(self, credential: EnrolmentCredential, audit: Sequence[Any] = ()) -> None:
        """Store a new credential; Conflict (nothing written) if its username is in use."""
        ...

    def get(self, tenant_id: str, username: str) -> EnrolmentCredential | None: ...

    def list_page(
        self, tenant_id: str, *, limit: int, next_token: str | None
    ) -> tuple[list[EnrolmentCredential], str | None]:
        """The tenant's credentials, newest first, a page at a time (``next_token`` from the last page)."""
        ...

    def consume(
        self, tenant_id: str, username: str, now: datetime, audit: Sequence[Any] = ()
    ) -> EnrolmentCredential | None:
        """Take one use, atomically and only if the credential is still usable at ``now`` (not revoked,
        not expired, a use left): concurrent callers never take more than ``uses``. Returns the
        credential as stored after the use (``last_used_at`` = now), or None when nothing was taken
        (absent or not usable; nothing written, the audit entries neither)."""
        ...

    def revoke(self, tenant_id: str, username: str, audit: Sequence[Any] = ()) -> EnrolmentCredential | None:
        """Revoke once (a second call answers the recorded state and writes nothing); None if absent."""
        ...


class CertificateStore(Protocol):
    def get_certificate(self, tenant_id: str, cert_id: str) -> CertificateRecord | None: ...

    def get_certificate_by_serial(self, tenant_id: str, serial: int) -> CertificateRecord | None: ...

    def list_identity_certificates(
        self, tenant_id: str, identity: str, *, limit: int, next_token: str | None
    ) -> tuple[list[CertificateRecord], str | None]: ...

    def get_identity(self, tenant_id: str, identity: str) -> IdentityRecord | None: ...

    def save_identity(self, record: IdentityRecord, audit: Sequence[Any] = ()) -> IdentityRecord: ...

    def get_request(self, tenant_id: str, cr_id: str) -> RequestRecord | None: ...

    def save_request(self, record: RequestRecord, audit: Sequence[Any] = ()) -> RequestRecord: ...

    def list_pending(
        self, tenant_id: str, *, limit: int, next_token: str | None
    ) -> tuple[list[RequestRecord], str | None]: ...

    def decide(self, request: RequestRecord, identity: IdentityRecord, audit: Sequence[Any] = ()) -> None: ...

    def store_issued(
        self, cert: CertificateRecord, identity: IdentityRecord, request: RequestRecord, audit: Sequence[Any] = ()
    ) -> None: ...

    def revoke(
        self, cert: CertificateRecord, reason: str, identity: IdentityRecord | None, audit: Sequence[Any] = ()
    ) -> None: ...

    def iter_revoked(
        self, tenant_id: str, *, page_size: int | None = None
    ) -> Iterator[tuple[int, datetime, str, datetime, str | None]]: ...

    def count_by_ca(self, tenant_id: str, ca_id: str, now: datetime) -> int:
        """How many of the tenant's certificates the CA certificate ``ca_id`` issued are unexpired
        (not_after > now) and unrevoked. May lag a write by a moment (DynamoDB reads an index)."""
        ...


class AuditStore(Protocol):
    def item(
        self,
        tenant: str | None,
        event: str,
        actor: str,
        subject: str | None = None,
        outcome: str | None = None,
        details: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> Any: ...

    def put(self, entry: Any) -> None: ...

    def query(
        self, tenant: str | None, start: datetime, end: datetime, event: str | None, limit: int, next_token: str | None
    ) -> tuple[list[AuditEvent], str | None]: ...


class KeyStore(Protocol):
    def secret_name(self, tenant_id: str, fingerprint: str | None = None) -> str:
        """The secret of the tenant's first CA key; with ``fingerprint`` (of a key made by a rotation) the
        secret of that key: the first name with ``-<first 16 hex of the fingerprint>``."""
        ...

    def create(self, tenant_id: str, key: ec.EllipticCurvePrivateKey, *, name: str | None = None) -> str:
        """Store a CA key in secret ``name`` (default: the first key's); returns the name. Raises
        SecretAlreadyExists if that secret exists (scheduled for deletion included)."""
        ...

    def load(self, name: str) -> ec.EllipticCurvePrivateKey: ...

    def schedule_deletion(self, name: str, recovery_days: int) -> bool:
        """Schedule the CA key secret ``name`` for deletion after ``recovery_days`` (7-30), during
        which it can be restored by hand; it cannot be loaded from now on. True if this call scheduled
        it; False if it was scheduled already, or is gone (idempotent: no error)."""
        ...

    # A tenant's other secrets, by kind (e.g. "webhook-secret"; never "ca-key": a CA key is not replaced).
    def put_secret(self, tenant_id: str, kind: str, value: bytes, *, replace: bool) -> str:
        """Store the secret; returns its name. Raises SecretAlreadyExists if it exists and not ``replace``."""
        ...

    def load_secret(self, tenant_id: str, kind: str) -> bytes | None: ...
