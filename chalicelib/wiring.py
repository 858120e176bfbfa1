"""Composition root: which implementation serves each storage port.

DynamoDB and Secrets Manager by default (imported on first use, keeping cold starts short); the
in-memory store for unit tests and benchmarks (``use_memory``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.service.ports import AuditStore, CertificateStore, KeyStore, TenantStore, TokenStore
    from chalicelib.store.memory import MemoryBackend

_override: dict[str, Any] = {}


def tenants() -> TenantStore:
    if "tenants" in _override:
        return _override["tenants"]  # type: ignore[no-any-return]
    from chalicelib.store import tenants as dynamo

    return dynamo


def tokens() -> TokenStore:
    if "tokens" in _override:
        return _override["tokens"]  # type: ignore[no-any-return]
    from chalicelib.store import tokens as dynamo

    return dynamo


def certificates() -> CertificateStore:
    if "certificates" in _override:
        return _override["certificates"]  # type: ignore[no-any-return]
    from chalicelib.store import certificates as dynamo

    return dynamo


def audit() -> AuditStore:
    if "audit" in _override:
        return _override["audit"]  # type: ignore[no-any-return]
    from chalicelib.store import audit as dynamo

    return dynamo


def keystore() -> KeyStore:
    if "keystore" in _override:
        return _override["keystore"]  # type: ignore[no-any-return]
    from chalicelib.keystore import secretsmanager

    return secretsmanager


def use_memory() -> MemoryBackend:
    """Serve every port from one fresh in-memory backend (no AWS at all)."""
    from chalicelib.store.memory import MemoryBackend

    backend = MemoryBackend()
    _override.update(
        tenants=backend.tenants,
        tokens=backend.tokens,
        certificates=backend.certificates,
        audit=backend.audit,
        keystore=backend.keystore,
    )
    return backend


def use_aws() -> None:
    _override.clear()
