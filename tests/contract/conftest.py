"""Every storage adapter, behind one fixture: the contract tests run once per adapter.

``adapter`` is parametrized by adapter name (``ADAPTERS``): the in-memory store, DynamoDB with
Secrets Manager on moto, and SQLite with the local key store. Adding an adapter is one entry in ``ADAPTERS`` (a context
manager, given a fresh directory of the module's, that yields an ``Adapter``). The fixture is module-scoped (moto deploys the stack once per test module);
tests stay apart by using a fresh tenant id each (every key starts with the tenant id) and fresh
token ids.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain import AuditEvent, CertificateRecord, IdentityRecord, RequestRecord, new_identity
from chalicelib.service.ports import (
    AuditStore,
    CertificateStore,
    CredentialStore,
    KeyStore,
    TenantStore,
    TokenStore,
)
from tests.conftest import TEST_ENV, deploy_resources, reset_caches


@dataclass
class Adapter:
    name: str
    tenants: TenantStore
    tokens: TokenStore
    certificates: CertificateStore
    audit: AuditStore
    keystore: KeyStore
    # Drop what this process keeps of the stores (caches): the next read sees what another
    # container would.
    forget: Callable[[], None]
    credentials: CredentialStore


@contextlib.contextmanager
def memory_adapter() -> Iterator[Adapter]:
    from chalicelib.store.memory import MemoryBackend

    b = MemoryBackend()
    yield Adapter("memory", b.tenants, b.tokens, b.certificates, b.audit, b.keystore, lambda: None, b.credentials)


@contextlib.contextmanager
def dynamodb_adapter() -> Iterator[Adapter]:
    """DynamoDB and Secrets Manager on moto, the stack deployed from infra/resources.yaml."""
    from moto import mock_aws

    from chalicelib import context

    with pytest.MonkeyPatch.context() as mp:
        for name, value in TEST_ENV.items():
            mp.setenv(name, value)
        with mock_aws():
            reset_caches()
            deploy_resources("test")
            ports = context.aws_context()  # the ports as production builds them
            yield Adapter(
                "dynamodb",
                ports.tenants,
                ports.tokens,
                ports.certificates,
                ports.audit,
                ports.keystore,
                forget=ports.caches.clear,
                credentials=ports.credentials,
            )
        reset_caches()


@contextlib.contextmanager
def sqlite_adapter(directory: Path) -> Iterator[Adapter]:
    """SQLite and the local key store: a fresh database file per test module, opened as make run
    opens it (the key store's table in the same file), under a random key-encryption key."""
    from chalicelib.cache import Cache
    from chalicelib.keystore.local import KEK_BYTES, LocalKeyStore
    from chalicelib.store.sqlite import SqliteBackend

    database = directory / "seacat.db"
    with SqliteBackend(database) as b:
        keystore = LocalKeyStore(database, secrets.token_bytes(KEK_BYTES), Cache("keys", 64), Cache("secrets", 64))
        try:
            yield Adapter(
                "sqlite", b.tenants, b.tokens, b.certificates, b.audit, keystore, keystore.forget, b.credentials
            )
        finally:
            keystore.close()


ADAPTERS: dict[str, Callable[[Path], AbstractContextManager[Adapter]]] = {
    "memory": lambda _: memory_adapter(),
    "dynamodb": lambda _: dynamodb_adapter(),
    "sqlite": sqlite_adapter,
}


@pytest.fixture(scope="module", params=list(ADAPTERS))
def adapter(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Adapter]:
    with ADAPTERS[request.param](tmp_path_factory.mktemp(request.param)) as a:
        yield a


@pytest.fixture
def tenant_id() -> str:
    return new_tenant_id()


def new_tenant_id() -> str:
    return f"ct-{secrets.token_hex(6)}"


# -- records -------------------------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(UTC)


def hex_id() -> str:
    """A certificate or request id of the service's form (96 hex digits)."""
    return secrets.token_hex(48)


def cert_record(
    tenant_id: str,
    *,
    identity: str | None = None,
    serial: int | None = None,
    cert_id: str | None = None,
    at: datetime | None = None,
    kind: str = "seacat",
    cr_id: str | None = None,
) -> CertificateRecord:
    at = at or now()
    return CertificateRecord(
        tenant_id=tenant_id,
        cert_id=cert_id or hex_id(),
        kind=kind,
        serial=serial if serial is not None else secrets.randbits(126) + 1,
        der=secrets.token_bytes(80),
        not_before=at,
        not_after=at + timedelta(days=365),
        created_at=at,
        modified_at=at,
        version=1,
        identity=identity,
        ca_id=None if kind == "ca" else "ca-" + secrets.token_hex(4),
        cr_id=cr_id,
    )


def request_record(
    tenant_id: str, identity: str, *, state: str = "pending", at: datetime | None = None, cert_id: str | None = None
) -> RequestRecord:
    at = at or now()
    return RequestRecord(
        tenant_id=tenant_id,
        cr_id=hex_id(),
        identity=identity,
        application="contract-app",
        der=secrets.token_bytes(60),
        state=state,
        created_at=at,
        modified_at=at,
        version=0,
        attributes=(("hostname", "h1"), ("os", "linux")),
        created_raw="2024-01-02T03:04:05Z",
        valid_to_raw=None,
        reason="awaiting manual approval" if state == "pending" else state,
        cert_id=cert_id,
    )


@dataclass(frozen=True)
class Issued:
    cert: CertificateRecord
    identity: IdentityRecord  # as handed to store_issued (the stored one has version + 1)
    request: RequestRecord


def issue_args(
    store: CertificateStore,
    tenant_id: str,
    identity: str,
    *,
    at: datetime | None = None,
    serial: int | None = None,
    cert_id: str | None = None,
    base: IdentityRecord | None = None,
) -> Issued:
    """What enrolment hands store_issued for a new certificate of ``identity`` (read now, or ``base``)."""
    current = base or store.get_identity(tenant_id, identity) or new_identity(tenant_id, identity, "contract-app")
    request = request_record(tenant_id, identity, state="issued", at=at)
    cert = cert_record(tenant_id, identity=identity, serial=serial, cert_id=cert_id, at=at, cr_id=request.cr_id)
    request = replace(request, cert_id=cert.cert_id)
    updated = replace(
        current,
        application="contract-app",
        cert_id=cert.cert_id,
        cert_serial=cert.serial,
        cert_der=cert.der,
        cert_not_before=cert.not_before,
        cert_not_after=cert.not_after,
        certificates=current.certificates + 1,
        modified_at=cert.created_at,
    )
    return Issued(cert, updated, request)


def issue(store: CertificateStore, tenant_id: str, identity: str, audit: Sequence[Any] = (), **kw: Any) -> Issued:
    issued = issue_args(store, tenant_id, identity, **kw)
    store.store_issued(issued.cert, issued.identity, issued.request, audit)
    return issued


# -- reading back --------------------------------------------------------------------------------

WIDE = timedelta(days=1)


def audit_events(
    a: Adapter,
    tenant: str | None,
    *,
    event: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """Every event of ``tenant`` in [start, end) (default: a day either side of now), page by page."""
    start = start or now() - WIDE
    end = end or now() + WIDE
    found: list[AuditEvent] = []
    token: str | None = None
    for _ in range(1000):
        page, token = a.audit.query(tenant, start, end, event, limit, token)
        found.extend(page)
        if token is None:
            return found
    raise AssertionError("the pages never end")


def pages(fetch: Callable[[str | None], tuple[list[Any], str | None]]) -> list[list[Any]]:
    """Every page of a list, following its tokens until none."""
    out: list[list[Any]] = []
    token: str | None = None
    for _ in range(1000):
        page, token = fetch(token)
        out.append(page)
        if token is None:
            return out
    raise AssertionError("the pages never end")
