"""The composition root: one typed context holding the storage ports, the key store and every
per-container cache, each cache with its bound and its time to live stated here.

Services ask for the whole context (``current()``) instead of one port at a time, so what they
depend on is visible and a test swaps everything at once: ``use_memory()`` for the in-memory
adapters, ``reset()`` for a fresh context (after the environment changed). ``current()`` builds
the one SEACAT_BACKEND names: AWS (the default: Lambda, `make run-emulator`) or SQLite with the
local key store (`make run`, self-hosting; ``local_context``). Adapters are imported when the first
context is built, not at import time, to keep Lambda cold starts short.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.cache import Cache
from chalicelib.settings import get_settings

if TYPE_CHECKING:
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    from chalicelib.domain import IdentityRecord, Tenant
    from chalicelib.service.ports import (
        AuditStore,
        CertificateStore,
        CredentialStore,
        KeyStore,
        TenantStore,
        TokenStore,
    )
    from chalicelib.store.memory import MemoryBackend
    from chalicelib.store.sqlite import SqliteBackend


def _tenant_ttl() -> float:
    return get_settings().tenant_cache_seconds


def _revocation_ttl() -> float:
    return get_settings().revocation_cache_seconds


# Gateway audit items: at most one per tenant, identity and reason per container in this window, so
# replaying a (public) revoked certificate cannot become a stream of writes.
AUDIT_WINDOW_SECONDS = 300.0
CRL_CACHE_SECONDS = 60.0
# The ActiveCaDaysLeft metric: at most once per tenant and container in this window.
EXPIRY_METRIC_SECONDS = 3600.0


@dataclass(frozen=True)
class Caches:
    """Per-container state. Keys that come from callers (tenant ids, certificate bodies) are bounded
    so a flood of invented ones only pushes out other entries."""

    # Tenant items (hot paths read them here): configuration changes show within the TTL.
    tenants: Cache[str, Tenant]
    # "No such tenant" answers, apart: invented ids only push out other invented ids.
    missing_tenants: Cache[str, bool]
    # Parsed CA certificates by id (they never change once made).
    ca_certs: Cache[str, x509.Certificate]
    # The gateway's trust store per tenant, with the CA ids it was built from.
    trust_stores: Cache[str, tuple[tuple[str, ...], Any]]
    # Path validation results per certificate body and CA set (see service/gateway.py).
    verified: Cache[tuple[tuple[str, ...], bytes], Any]
    # Identity records the gateway read: revocation reaches this container within the TTL.
    identities: Cache[tuple[str, str], IdentityRecord | None]
    # Earlier certificates of an identity the store confirmed it issued (a fact that never changes).
    issued: Cache[tuple[str, int, bytes], str]
    # When a gateway denial was last audited.
    audited: Cache[tuple[str, str, str], bool]
    # CRLs (DER) per tenant and CA id.
    crls: Cache[tuple[str, str], bytes]
    # Decrypted CA keys by secret name (never replaced, so no TTL) and other tenant secrets (rotated).
    keys: Cache[str, ec.EllipticCurvePrivateKey]
    secrets: Cache[str, bytes]
    # OCSP: (issuerNameHash, issuerKeyHash) per CA certificate id and hash algorithm (never change).
    ocsp_issuers: Cache[tuple[str, str], tuple[bytes, bytes]]
    # OCSP: the delegated responder (certificate, key) per tenant and CA certificate id. Safe to keep:
    # one stays valid until its notAfter whichever container re-issued it; service/ocsp.py checks it.
    ocsp_signers: Cache[tuple[str, str], Any]
    # Tenants whose ActiveCaDaysLeft metric this container emitted within the hour (service/cas.py).
    ca_expiry_noted: Cache[str, bool]

    @classmethod
    def fresh(cls) -> Caches:
        return cls(
            tenants=Cache("tenants", 4096, _tenant_ttl),
            missing_tenants=Cache("missing_tenants", 1024, _tenant_ttl),
            ca_certs=Cache("ca_certs", 1024),
            trust_stores=Cache("trust_stores", 1024),
            verified=Cache("verified", 4096),
            identities=Cache("identities", 16384, _revocation_ttl),
            issued=Cache("issued", 4096),
            audited=Cache("audited", 4096, AUDIT_WINDOW_SECONDS),
            crls=Cache("crls", 1024, CRL_CACHE_SECONDS),
            keys=Cache("keys", 1024),
            secrets=Cache("secrets", 1024, _tenant_ttl),
            ocsp_issuers=Cache("ocsp_issuers", 4096),
            ocsp_signers=Cache("ocsp_signers", 1024),
            ca_expiry_noted=Cache("ca_expiry_noted", 4096, EXPIRY_METRIC_SECONDS),
        )

    def clear(self) -> None:
        for f in fields(self):
            getattr(self, f.name).clear()


@dataclass(frozen=True)
class Context:
    tenants: TenantStore
    tokens: TokenStore
    certificates: CertificateStore
    audit: AuditStore
    keystore: KeyStore
    caches: Caches
    # EST enrolment credentials (chalicelib/service/credentials.py).
    credentials: CredentialStore
    # Closes what this context opened itself (its database connections), when a process leaves.
    close: Callable[[], None] = lambda: None


def aws_context() -> Context:
    """DynamoDB (pynamodb) and Secrets Manager, bound to the current settings at first use."""
    from chalicelib.keystore.secretsmanager import SecretsManagerKeyStore
    from chalicelib.store import audit, certificates, credentials, tenants, tokens

    caches = Caches.fresh()
    return Context(
        tenants=tenants,
        tokens=tokens,
        certificates=certificates,
        audit=audit,
        keystore=SecretsManagerKeyStore(caches.keys, caches.secrets),
        caches=caches,
        credentials=credentials,
    )


# The sqlite backend's database in its data directory (SEACAT_DATA_DIR); the local key store keeps
# its table in the same file, beside it the key-encryption key (``kek``) unless SEACAT_LOCAL_KEK.
LOCAL_DATABASE = "seacat.db"


def local_context(data_dir: Path, backend: Any = None) -> Context:
    """SQLite (chalicelib/store/sqlite/) and the local key store, both in ``data_dir/seacat.db``; on
    ``backend`` (a ``SqliteBackend`` its owner closes) if given, else on one opened for the process.

    Built in the process that uses it (each server worker after the fork): it reads the KEK and
    opens its own connections."""
    from chalicelib.keystore.local import LocalKeyStore, load_kek

    settings = get_settings()
    caches = Caches.fresh()
    database = data_dir / LOCAL_DATABASE
    keystore = LocalKeyStore(database, load_kek(settings.local_kek, data_dir).key, caches.keys, caches.secrets)
    built = sqlite_context(backend or database, keystore)

    def close() -> None:
        built.close()
        keystore.close()

    # The key store's caches are the context's, whatever sqlite_context made.
    return replace(built, caches=caches, close=close)


def memory_context() -> tuple[Context, MemoryBackend]:
    """Every port in memory (no AWS at all): unit tests, benchmarks."""
    from chalicelib.store.memory import MemoryBackend

    backend = MemoryBackend()
    context = Context(
        tenants=backend.tenants,
        tokens=backend.tokens,
        certificates=backend.certificates,
        audit=backend.audit,
        keystore=backend.keystore,
        caches=Caches.fresh(),
        credentials=backend.credentials,
    )
    return context, backend


def sqlite_context(path: Path | SqliteBackend, keystore: KeyStore) -> Context:
    """The storage ports on an embedded SQLite database (no AWS at all): make run. A path opens the
    database for the rest of the process; a ``SqliteBackend`` is used as given (its owner closes it).
    Build it in the process that serves from it, after any fork (chalicelib/store/sqlite/)."""
    from chalicelib.store.sqlite import SqliteBackend

    opened = not isinstance(path, SqliteBackend)
    backend = path if isinstance(path, SqliteBackend) else SqliteBackend(path)
    return Context(
        tenants=backend.tenants,
        tokens=backend.tokens,
        certificates=backend.certificates,
        audit=backend.audit,
        keystore=keystore,
        caches=Caches.fresh(),
        credentials=backend.credentials,
        close=(lambda: backend.close(every_thread=True)) if opened else (lambda: None),
    )


_current: Context | None = None
_lock = threading.Lock()


def current() -> Context:
    """The container's context: built once, on the first request that needs one."""
    context = _current
    if context is None:
        with _lock:
            context = _current
            if context is None:
                settings = get_settings()
                if settings.backend == "sqlite" and settings.data_dir:
                    context = _install(local_context(Path(settings.data_dir)))
                else:
                    context = _install(aws_context())
    return context


def _install(context: Context) -> Context:
    global _current
    _current = context
    return context


def install(context: Context) -> None:
    with _lock:
        _install(context)


def use_memory() -> MemoryBackend:
    """Install a fresh in-memory context; returns its backend (to look at what was stored)."""
    context, backend = memory_context()
    install(context)
    return backend


def close() -> None:
    """A server worker leaving: close what the installed context opened (every thread's database
    connection, the key store's) and forget it. Only once its threads serve no more."""
    global _current
    with _lock:
        context, _current = _current, None
    if context is not None:
        context.close()


def reset() -> None:
    """Forget the context, the settings and the AWS connections: the next ``current()`` builds a fresh
    one from the environment as it is then (tests switch emulators and settings between cases)."""
    global _current
    from chalicelib import aws
    from chalicelib.store import common

    with _lock:
        _current = None
    get_settings.cache_clear()
    aws.reset()
    common.reset()
