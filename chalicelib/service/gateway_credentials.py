"""Gateway credentials: an optional shared secret a tenant's NGINX sends to nginx_authenticate.

Off by default (the reference NGINX configuration sends none). Once a tenant creates one, only
requests carrying a valid credential in X-SeaCat-Gateway-Credential are answered past a 401, so
nobody else can use the public route as an oracle for the tenant's identities or make it work.
Only SHA-256 of a credential is stored; the credential itself is shown once, when it is made.
Two may be valid at once (newest first), so a rotation never locks the gateways out: create a new
one, roll it out to every gateway, then drop the previous one.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace

from chalicelib.context import current
from chalicelib.domain import Tenant
from chalicelib.errors import Conflict
from chalicelib.service import audit

HEADER = "X-SeaCat-Gateway-Credential"
MAX_VALID = 2  # the newest and the one it replaces


def _update(tenant_id: str, change: str, hashes: tuple[str, ...] | None, new: str | None) -> Tenant:
    from chalicelib.service.tenants import forget_cached, get_tenant

    for _ in range(5):
        tenant = get_tenant(tenant_id)
        valid = tenant.config.gateway_credentials
        target = hashes if hashes is not None else ((new,) + valid)[:MAX_VALID] if new else valid
        if target == valid:
            return tenant
        event = audit.entry(f"gateway_credential.{change}", tenant_id, tenant_id, change, {"valid": len(target)})
        try:
            updated = current().tenants.update_config(
                tenant, replace(tenant.config, gateway_credentials=target), [event]
            )
        except Conflict:
            continue  # the tenant changed since it was read: read again
        forget_cached(tenant_id)
        return updated
    raise Conflict("the tenant keeps changing, retry", field="tenant")


def create(tenant_id: str) -> tuple[str, Tenant]:
    """A new credential (returned once); it and the previous newest one are valid from now on."""
    credential = "sgc_" + secrets.token_urlsafe(32)
    tenant = _update(tenant_id, "created", None, hashlib.sha256(credential.encode("ascii")).hexdigest())
    return credential, tenant


def drop(tenant_id: str, *, previous_only: bool) -> Tenant:
    """Drop the previous credential (after a rotation), or all of them (no credential required)."""
    from chalicelib.service.tenants import get_tenant

    current = get_tenant(tenant_id).config.gateway_credentials
    return _update(tenant_id, "dropped", current[:1] if previous_only else (), None)
