"""Tenants: onboarding (generating or importing the CA key), configuration, the hot paths' cache."""

from __future__ import annotations

from typing import Any

from chalicelib.cache import Missing
from chalicelib.context import current
from chalicelib.domain import Tenant, TenantConfig
from chalicelib.errors import Conflict, InvalidInput, NotFound, SecretAlreadyExists
from chalicelib.service import audit
from chalicelib.service.ids import TENANT_RE, naive_iso, validate_cert_id, validate_tenant_id
from chalicelib.service.tenant_config import CONFIG_KEYS, merge_config

__all__ = [
    "cached_tenant",
    "forget_cached",
    "get_tenant",
    "naive_iso",
    "put_tenant",
    "tenant_json",
    "validate_cert_id",
    "validate_tenant_id",
]


def put_tenant(tenant_id: str, body: dict[str, Any]) -> tuple[Tenant, bool]:
    """Create a tenant (generating or importing its CA key) or merge its configuration.

    Idempotent: the same PUT twice leaves the same state. Returns (tenant, created).
    """
    from chalicelib.ca import keys

    keystore = current().keystore
    store = current().tenants

    validate_tenant_id(tenant_id)
    unknown = sorted(set(body) - CONFIG_KEYS - {"privateKey"})
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}", field=unknown[0])
    imported = keys.load_ca_private_key_pem(body["privateKey"]) if "privateKey" in body else None
    config_body = {k: v for k, v in body.items() if k != "privateKey"}

    existing = store.get(tenant_id)
    if existing is None:
        config = merge_config(TenantConfig(), config_body)
        key = imported or keys.generate_ca_key()
        try:
            secret = keystore.create(tenant_id, key)
        except SecretAlreadyExists:
            # A secret without a tenant item: an interrupted earlier create, or a concurrent one.
            secret = keystore.secret_name(tenant_id)
            stored = keystore.load(secret)
            if imported is not None and keys.public_key_fingerprint(stored.public_key()) != keys.public_key_fingerprint(
                imported.public_key()
            ):
                raise Conflict("a different CA key is already stored for this tenant", field="privateKey") from None
            key = stored
        fingerprint = keys.public_key_fingerprint(key.public_key())
        try:
            events = [
                audit.entry("tenant.created", tenant_id, tenant_id, "created", {"config": config.public_json()}),
                audit.entry(
                    "key.imported" if imported is not None else "key.generated",
                    tenant_id,
                    fingerprint,
                    "stored",
                    {"secret": secret},
                ),
            ]
            return store.create(tenant_id, config, secret, fingerprint, imported is not None, events), True
        except Conflict:
            existing = store.get(tenant_id)
            if existing is None:
                raise
    if imported is not None and keys.public_key_fingerprint(imported.public_key()) != existing.key_fingerprint:
        raise Conflict("the tenant already has a different CA key; keys are never replaced", field="privateKey")
    config = merge_config(existing.config, config_body)
    if config == existing.config:
        return existing, False
    changed = {k: v for k, v in config.public_json().items() if existing.config.public_json().get(k) != v}
    event = audit.entry("tenant.updated", tenant_id, tenant_id, "updated", {"changed": changed})
    return store.update_config(existing, config, [event]), False


def get_tenant(tenant_id: str) -> Tenant:
    store = current().tenants

    validate_tenant_id(tenant_id)
    tenant = store.get(tenant_id)
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id}", field="tenant")
    return tenant


def cached_tenant(tenant_id: str) -> Tenant | None:
    """The tenant as hot paths (enrol, /get, the CA bundle, nginx_authenticate) read it: through the
    context's tenant caches, so configuration changes take effect within SEACAT_TENANT_CACHE_SECONDS.
    The id comes from the URL: "no such tenant" answers have a cache of their own, so a flood of
    invented ids only pushes out other invented ids, never a tenant that exists."""
    context = current()
    caches = context.caches
    if not TENANT_RE.fullmatch(tenant_id or ""):
        return None
    hit = caches.tenants.get(tenant_id)
    if not isinstance(hit, Missing):
        return hit
    if not isinstance(caches.missing_tenants.get(tenant_id), Missing):
        return None
    tenant = context.tenants.get(tenant_id, consistent=False)
    if tenant is None:
        caches.tenants.pop(tenant_id)
        caches.missing_tenants.put(tenant_id, True)
    else:
        caches.missing_tenants.pop(tenant_id)
        caches.tenants.put(tenant_id, tenant)
    return tenant


def forget_cached(tenant_id: str | None = None) -> None:
    caches = current().caches
    if tenant_id is None:
        caches.tenants.clear()
        caches.missing_tenants.clear()
    else:
        caches.tenants.pop(tenant_id)
        caches.missing_tenants.pop(tenant_id)


def tenant_json(tenant: Tenant) -> dict[str, object]:
    return {
        "tenant": tenant.tenant_id,
        "config": tenant.config.public_json(),
        "keyFingerprint": tenant.key_fingerprint,
        "keyImported": tenant.key_imported,
        "activeCa": f"{tenant.tenant_id}:{tenant.active_ca}" if tenant.active_ca else None,
        "caCertificates": [f"{tenant.tenant_id}:{ca.cert_id}" for ca in tenant.cas],
        "_c": naive_iso(tenant.created_at),
        "_m": naive_iso(tenant.modified_at),
        "_v": tenant.version,
    }
