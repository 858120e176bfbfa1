"""Admin authorisation: a bearer token, and which tenants it reaches."""

from __future__ import annotations

from chalice.app import Request

from chalicelib import observability
from chalicelib.domain import Principal
from chalicelib.errors import Forbidden, NotFound


def require(request: Request, tenant_id: str | None = None, *, operator: bool = False) -> Principal:
    """Authenticate the request; a tenant-scoped token sees other tenants as absent (404)."""
    from chalicelib.service import tokens

    principal = tokens.authenticate(request.headers.get("authorization"))
    observability.bind(actor=principal.token_id)
    if operator and not principal.is_operator:
        raise Forbidden("this route needs an operator token")
    if tenant_id is not None and not principal.is_operator and principal.tenant_id != tenant_id:
        raise NotFound(f"no tenant {tenant_id}", field="tenant")
    return principal
