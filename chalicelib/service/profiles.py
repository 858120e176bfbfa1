"""A tenant's certificate profiles (admin): create or replace (idempotent PUT), list, read, delete.

Profiles are few per tenant and live on the tenant's configuration, written with the tenant item's
optimistic version like any configuration change: no table of their own, and the hot path reads them
with the (cached) tenant. The built-in ``seacat`` profile is listed and read, never written.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from chalicelib.ca.profiles import MAX_PROFILE_JSON, MAX_PROFILES, MAX_PROFILES_JSON, SEACAT, Profile, parse_profile
from chalicelib.context import current
from chalicelib.domain import Tenant
from chalicelib.errors import Conflict, InvalidInput, NotFound
from chalicelib.service import audit

ATTEMPTS = 3  # tenant writes raced by another configuration change are read and tried again


def _size(profile: Profile) -> int:
    return len(json.dumps(profile.to_json(), separators=(",", ":")).encode("utf-8"))


def put_profile(tenant_id: str, name: str, body: dict[str, Any]) -> tuple[Profile, bool]:
    """Create or replace the profile ``name`` from ``body``. Returns (profile, created); the same PUT
    twice writes once."""
    from chalicelib.service.tenants import forget_cached, get_tenant

    if name == SEACAT:
        raise Conflict("the seacat profile is built in and read-only", field="name")
    profile = parse_profile(name, body)
    if _size(profile) > MAX_PROFILE_JSON:
        raise InvalidInput(f"the profile is larger than {MAX_PROFILE_JSON} bytes", field="body")
    for _ in range(ATTEMPTS):
        tenant = get_tenant(tenant_id)
        if profile.approval == "webhook" and tenant.config.approve is None:
            raise InvalidInput(
                "webhook approval needs the tenant's approve URL (PUT /tenants/{tenant})", field="approval"
            )
        existing = tenant.config.profile(name)
        if existing == profile:
            return profile, False
        if existing is None and len(tenant.config.profiles) >= MAX_PROFILES:
            raise Conflict(f"a tenant has at most {MAX_PROFILES} profiles", field="name")
        profiles = tuple(profile if p.name == name else p for p in tenant.config.profiles)
        if existing is None:
            profiles += (profile,)
        if sum(_size(p) for p in profiles) > MAX_PROFILES_JSON:
            raise Conflict(f"a tenant's profiles take at most {MAX_PROFILES_JSON} bytes", field="body")
        event = audit.entry(
            "profile.created" if existing is None else "profile.updated",
            tenant_id,
            name,
            "created" if existing is None else "updated",
            {"profile": profile.to_json()},
        )
        try:
            current().tenants.update_config(tenant, replace(tenant.config, profiles=profiles), [event])
        except Conflict:
            continue
        forget_cached(tenant_id)
        return profile, existing is None
    raise Conflict("the tenant's configuration keeps changing, retry", field="name")


def delete_profile(tenant_id: str, name: str) -> bool:
    """Delete a profile; False if there was none (idempotent). Certificates it issued stay valid; its
    pending CSRs can then only be rejected. 409 for the seacat profile and for the tenant's EST
    default (change ``estProfile`` first)."""
    from chalicelib.service.tenants import forget_cached, get_tenant

    if name == SEACAT:
        raise Conflict("the seacat profile is built in and read-only", field="name")
    for _ in range(ATTEMPTS):
        tenant = get_tenant(tenant_id)
        if tenant.config.profile(name) is None:
            return False
        if tenant.config.est_profile == name:
            raise Conflict("this profile is the tenant's estProfile: name another one first", field="name")
        profiles = tuple(p for p in tenant.config.profiles if p.name != name)
        event = audit.entry("profile.deleted", tenant_id, name, "deleted")
        try:
            current().tenants.update_config(tenant, replace(tenant.config, profiles=profiles), [event])
        except Conflict:
            continue
        forget_cached(tenant_id)
        return True
    raise Conflict("the tenant's configuration keeps changing, retry", field="name")


def list_profiles(tenant_id: str, limit: int, next_token: str | None) -> tuple[list[Profile], str | None]:
    """The seacat profile, then the tenant's in the order they were made; ``next`` is the name of the
    last one of the page."""
    from chalicelib.service.csr import profiles_of
    from chalicelib.service.tenants import get_tenant

    profiles = profiles_of(get_tenant(tenant_id))
    start = 0
    if next_token:
        index = next((i for i, p in enumerate(profiles) if p.name == next_token), None)
        if index is None:
            raise InvalidInput("not a page token of this list", field="next")
        start = index + 1
    page = profiles[start : start + limit]
    more = start + limit < len(profiles)
    return page, (page[-1].name if more and page else None)


def profile_json(tenant: Tenant | None, profile: Profile) -> dict[str, object]:
    shown = profile.to_json()
    if tenant is not None:
        shown["tenant"] = tenant.tenant_id
        shown["estDefault"] = tenant.config.est_profile == profile.name
    return shown


def get_profile(tenant_id: str, name: str) -> tuple[Tenant, Profile]:
    from chalicelib.service.csr import profile_of
    from chalicelib.service.tenants import get_tenant

    tenant = get_tenant(tenant_id)
    try:
        return tenant, profile_of(tenant, name)
    except NotFound:
        raise NotFound("no such profile", field="name") from None
